"""Real-pool shard scanning: every example is kept or counted under exactly one reason."""
import io
import json
import os
import tarfile
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vlscale.data.shards import REASONS, ShardScan, load_example, scan_shards

LANGUAGES = {"en", "de", "sw"}


def pixels(seed, size=(12, 16)):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def encode(array, fmt):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


JPEG = encode(pixels(0), "JPEG")
PNG_PIXELS = pixels(1)
PNG = encode(PNG_PIXELS, "PNG")
TRUNCATED_JPEG = JPEG[: len(JPEG) // 2]
GARBAGE = np.random.default_rng(2).integers(0, 256, 300, dtype=np.uint8).tobytes()


def write_tar(path, members):
    """members: (name, bytes | str | dict) in tar order; str is UTF-8 text, dict is JSON."""
    with tarfile.open(path, "w") as tar:
        for name, content in members:
            if isinstance(content, dict):
                content = json.dumps(content)
            if isinstance(content, str):
                content = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return str(path)


def example(key, image=JPEG, ext="jpg", caption="a red stove", **meta):
    """Tar members of one example; image/caption None leaves that member out."""
    members = []
    if image is not None:
        members.append((f"{key}.{ext}", image))
    if caption is not None:
        members.append((f"{key}.txt", caption))
    members.append((f"{key}.json", meta))
    return members


def write_parquet(path, columns, row_group_size=None):
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return str(path)


@pytest.fixture
def pool(tmp_path):
    """Two tars, a binary-image parquet, a struct-image parquet and an unreadable file, with every kind of bad record."""
    a = write_tar(
        tmp_path / "a.tar",
        example("000", uid="u1", language="en", clip_score=0.31)
        + example("001", image=PNG, ext="png", uid="u2", language="de")
        + example("002", image=TRUNCATED_JPEG, uid="trunc", language="en")
        + example("003", image=GARBAGE, uid="garbage", language="en")
        + example("004", image=None, uid="noimage", language="en")
        + example("005", caption=None, uid="nocaption", language="en")
        + example("006", caption=" \n\t ", uid="blank", language="en")
        + example("007", caption="x" * 5000, uid="long", language="en")
        + example("008", uid="xx", language="xx")
        + example("009", uid="u1", language="en")  # duplicate within the shard
        # img2dataset layout: uid under "key", caption in the json, no .txt
        + [("010.jpg", JPEG), ("010.json", {"key": "u5", "caption": "a house", "language": "sw"})],
    )
    b = write_parquet(
        tmp_path / "b.parquet",
        {
            "uid": ["u3", "u2", "pq-noimage", "pq-garbage", "pq-nocaption", "pq-xx"],
            "caption": ["a wedding", "dup across shards", "x", "x", None, "x"],
            "jpg": [JPEG, PNG, None, GARBAGE, JPEG, JPEG],
            "language": ["en", "en", "en", "en", "en", "xx"],
            "clip_score": [0.5, 0.1, 0.2, 0.3, 0.4, 0.6],
        },
    )
    # Hugging Face datasets layout: struct image {bytes, path}, uid under "key", caption under "text"
    c = write_parquet(
        tmp_path / "c.parquet",
        {
            "key": ["u4", "u3", "hf-noimage"],
            "text": ["a landmark", "dup of a parquet uid", "x"],
            "image": [{"bytes": PNG, "path": "u4.png"}, {"bytes": JPEG, "path": None}, {"bytes": None, "path": "gone.png"}],
            "language": ["sw", "en", "en"],
        },
    )
    d = write_tar(tmp_path / "d.tar", example("100", uid="u4", language="en") + example("101", uid="u6", language="en"))
    bad = tmp_path / "e.tar"
    bad.write_bytes(GARBAGE * 10)
    return [a, b, c, d, str(bad)]


def test_every_bad_record_is_counted_under_exactly_its_reason(pool):
    scan = scan_shards(pool, languages=LANGUAGES, progress=False)
    report = scan.report
    assert report["rejected"] == {
        "unreadable_shard": 1,
        "missing_image": 3,  # tar member absent, parquet null, struct with null bytes
        "corrupt_image": 3,  # truncated JPEG, garbage .jpg, garbage parquet bytes
        "missing_caption": 2,
        "empty_caption": 1,
        "oversized_caption": 1,
        "unknown_language": 2,
        "duplicate_uid": 4,  # u1 in a.tar, u2 tar->parquet, u3 parquet->parquet, u4 parquet->tar
    }
    assert list(report["rejected"]) == list(REASONS)
    assert report["examples_in"] == 11 + 6 + 3 + 2 + 1
    assert report["examples_in"] == report["kept"] + sum(report["rejected"].values())
    assert report["identity_holds"]
    scan.check()
    assert report["shards"] == 5
    assert report["shards_unreadable"] == [pool[4]]


def test_kept_records_are_exactly_the_good_first_occurrences(pool):
    records = scan_shards(pool, languages=LANGUAGES, progress=False).records
    assert list(records.uid) == ["u1", "u2", "u5", "u3", "u4", "u6"]
    assert list(records.language) == ["en", "de", "sw", "en", "sw", "en"]
    assert list(records.shard) == [pool[0], pool[0], pool[0], pool[1], pool[2], pool[3]]
    assert list(records.member) == ["000.jpg", "001.png", "010.jpg", "0", "0", "101.jpg"]
    assert records.caption.iloc[2] == "a house"


def test_records_carry_scores_as_float_with_nan_where_absent(pool):
    records = scan_shards(pool, languages=LANGUAGES, progress=False).records
    assert list(records.columns) == ["uid", "language", "caption", "shard", "member", "clip_score"]
    assert records.clip_score.dtype == np.float64
    score = dict(zip(records.uid, records.clip_score))
    assert score["u1"] == pytest.approx(0.31) and score["u3"] == pytest.approx(0.5)
    assert np.isnan(score["u2"]) and np.isnan(score["u4"])


def test_samples_name_shard_and_key_of_rejected_examples(pool):
    samples = scan_shards(pool, languages=LANGUAGES, progress=False).report["samples"]
    assert samples["corrupt_image"] == [[pool[0], "002"], [pool[0], "003"], [pool[1], "3"]]
    assert samples["duplicate_uid"][0] == [pool[0], "009"]
    assert samples["unreadable_shard"][0][0] == pool[4]  # second item: the error that made it unreadable
    assert set(samples) == set(REASONS)


def test_samples_are_capped_at_ten_per_reason(tmp_path):
    shard = write_tar(tmp_path / "s.tar", sum((example(f"{i:03d}", image=GARBAGE, uid=f"g{i}") for i in range(12)), []))
    report = scan_shards([shard], languages=LANGUAGES, progress=False).report
    assert report["rejected"]["corrupt_image"] == 12
    assert len(report["samples"]["corrupt_image"]) == 10


def test_first_reason_in_order_wins(tmp_path):
    shard = write_tar(
        tmp_path / "s.tar",
        example("000", image=GARBAGE, caption="", uid="a", language="xx")  # corrupt, empty, unknown
        + example("001", caption=None, uid="b", language="xx")  # missing caption, unknown language
        + example("002", caption="y" * 2000, uid="c", language="xx"),  # oversized, unknown language
    )
    rejected = scan_shards([shard], languages=LANGUAGES, progress=False).report["rejected"]
    assert {r: n for r, n in rejected.items() if n} == {"corrupt_image": 1, "missing_caption": 1, "oversized_caption": 1}


def test_a_duplicate_is_a_uid_kept_earlier_not_one_rejected_earlier(tmp_path):
    shard = write_tar(
        tmp_path / "s.tar",
        example("000", image=GARBAGE, uid="same", language="en") + example("001", uid="same", language="en"),
    )
    scan = scan_shards([shard], languages=LANGUAGES, progress=False)
    assert list(scan.records.uid) == ["same"]
    assert scan.records.member.iloc[0] == "001.jpg"


def test_max_caption_chars_counts_characters_after_strip(tmp_path):
    shard = write_tar(
        tmp_path / "s.tar",
        example("000", caption="  " + "é" * 10 + "  ", uid="fits", language="en")
        + example("001", caption="é" * 11, uid="over", language="en"),
    )
    scan = scan_shards([shard], languages=LANGUAGES, max_caption_chars=10, progress=False)
    assert list(scan.records.uid) == ["fits"]
    assert scan.records.caption.iloc[0] == "é" * 10
    assert scan.report["rejected"]["oversized_caption"] == 1


def test_load_example_returns_png_pixels_exactly_and_decodes_jpeg(pool):
    records = scan_shards(pool, languages=LANGUAGES, progress=False).records.set_index("uid", drop=False)
    image, caption = load_example(records.loc["u2"])
    assert image.dtype == np.uint8 and image.shape == PNG_PIXELS.shape
    np.testing.assert_array_equal(image, PNG_PIXELS)
    assert caption == "a red stove"
    image, caption = load_example(records.loc["u1"].to_dict())
    assert image.dtype == np.uint8 and image.shape == (12, 16, 3)
    assert caption == "a red stove"
    image, caption = load_example(records.loc["u3"])  # parquet binary column
    assert image.shape == (12, 16, 3) and caption == "a wedding"


def test_parquet_struct_image_layout_is_read_and_reloaded(pool):
    scan = scan_shards([pool[2]], languages=LANGUAGES, progress=False)
    assert list(scan.records.uid) == ["u4", "u3"]
    assert scan.report["rejected"]["missing_image"] == 1
    image, caption = load_example(scan.records.iloc[0])
    np.testing.assert_array_equal(image, PNG_PIXELS)
    assert caption == "a landmark"


def test_load_example_finds_rows_in_later_row_groups(tmp_path):
    arrays = [pixels(10 + i, size=(4, 5)) for i in range(7)]
    shard = write_parquet(
        tmp_path / "s.parquet",
        {"uid": [f"r{i}" for i in range(7)], "caption": [f"c{i}" for i in range(7)], "png": [encode(a, "PNG") for a in arrays]},
        row_group_size=3,
    )
    records = scan_shards([shard], languages=LANGUAGES, default_language="en", progress=False).records
    for i in (0, 4, 6):
        image, caption = load_example(records.iloc[i])
        np.testing.assert_array_equal(image, arrays[i])
        assert caption == f"c{i}"


def test_parquet_rows_are_numbered_across_batches(tmp_path):
    n = 300  # more than one read batch
    arrays = [pixels(1000 + i, size=(2, 3)) for i in range(n)]
    shard = write_parquet(tmp_path / "s.parquet", {"caption": [f"c{i}" for i in range(n)], "image": [encode(a, "PNG") for a in arrays]})
    records = scan_shards([shard], languages=LANGUAGES, default_language="en", progress=False).records
    assert list(records.member) == [str(i) for i in range(n)]
    assert records.uid.iloc[299] == "s.parquet:299"  # no uid column: file name and row
    image, caption = load_example(records.iloc[299])
    np.testing.assert_array_equal(image, arrays[299])
    assert caption == "c299"


def test_parquet_without_an_image_column_rejects_every_row_as_missing_image(tmp_path):
    shard = write_parquet(tmp_path / "meta.parquet", {"key": ["a", "b"], "caption": ["x", "y"], "url": ["http://a", "http://b"]})
    report = scan_shards([shard], languages=LANGUAGES, default_language="en", progress=False).report
    assert report["rejected"]["missing_image"] == 2 and report["kept"] == 0


def test_tar_keys_keep_their_directory_and_split_at_the_first_dot(tmp_path):
    shard = write_tar(
        tmp_path / "s.tar",
        [("part/k0.jpg", JPEG), ("part/k0.txt", "in a folder"), ("part/k1.seg.png", PNG), ("part/k1.txt", "mask only")],
    )
    scan = scan_shards([shard], languages=LANGUAGES, default_language="en", progress=False)
    assert list(scan.records.uid) == ["part/k0"] and list(scan.records.member) == ["part/k0.jpg"]
    assert scan.report["rejected"]["missing_image"] == 1  # "k1.seg.png" is a "seg.png" member, not an image
    assert load_example(scan.records.iloc[0])[1] == "in a folder"


def test_default_language_fills_examples_without_one(tmp_path):
    shard = write_tar(tmp_path / "s.tar", [("k0.jpg", JPEG), ("k0.txt", "no json at all"), *example("k1", uid="u1")])
    without = scan_shards([shard], languages=LANGUAGES, progress=False)
    assert without.report["rejected"]["unknown_language"] == 2 and without.report["kept"] == 0
    scan = scan_shards([shard], languages=LANGUAGES, default_language="sw", progress=False)
    assert list(scan.records.uid) == ["k0", "u1"]  # uid falls back to the tar key
    assert list(scan.records.language) == ["sw", "sw"]


def test_default_language_must_be_allowed():
    with pytest.raises(ValueError, match="'fr'"):
        scan_shards([], languages=LANGUAGES, default_language="fr", progress=False)


def test_a_glob_scans_every_matching_shard_in_sorted_order(tmp_path):
    for i in (2, 0, 1):
        write_tar(tmp_path / f"shard-{i}.tar", example("k", uid=f"u{i}", language="en"))
    write_parquet(tmp_path / "shard-3.parquet", {"uid": ["u3"], "caption": ["c"], "jpg": [JPEG], "language": ["de"]})
    scan = scan_shards([str(tmp_path / "shard-*.tar"), tmp_path / "*.parquet"], languages=LANGUAGES, progress=False)
    assert list(scan.records.uid) == ["u0", "u1", "u2", "u3"]
    assert scan.report["shards"] == 4


def test_a_path_matching_nothing_raises_naming_it(tmp_path):
    write_tar(tmp_path / "ok.tar", example("k", uid="u", language="en"))
    missing = str(tmp_path / "nothing-*.tar")
    with pytest.raises(ValueError, match="nothing-"):
        scan_shards([tmp_path / "ok.tar", missing], languages=LANGUAGES, progress=False)
    with pytest.raises(ValueError, match="absent.parquet"):
        scan_shards([tmp_path / "absent.parquet"], languages=LANGUAGES, progress=False)


def test_an_unknown_suffix_raises_naming_the_file(tmp_path):
    (tmp_path / "00000_stats.json").write_text("{}")
    with pytest.raises(ValueError, match="00000_stats.json"):
        scan_shards([tmp_path / "*"], languages=LANGUAGES, progress=False)


def test_unreadable_shards_are_counted_once_each_and_named(tmp_path):
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_bytes(GARBAGE)
    good = write_tar(tmp_path / "good.tar", example("k", uid="u", language="en"))
    scan = scan_shards([empty, not_parquet, good], languages=LANGUAGES, progress=False)
    assert scan.report["shards_unreadable"] == [str(empty), str(not_parquet)]
    assert scan.report["rejected"]["unreadable_shard"] == 2
    assert scan.report["examples_in"] == 3 and scan.report["kept"] == 1
    scan.check()


def test_a_truncated_tar_is_one_unreadable_shard_and_the_scan_goes_on(tmp_path):
    cut = write_tar(tmp_path / "cut.tar", example("000", uid="a", language="en") + example("001", image=PNG, ext="png", uid="b", language="en"))
    data = open(cut, "rb").read()
    with open(cut, "wb") as f:  # the download stopped half-way through the second example's PNG
        f.write(data[: data.index(PNG[:16]) + len(PNG) // 2])
    good = write_tar(tmp_path / "good.tar", example("000", uid="a", language="en"))
    scan = scan_shards([cut, good], languages=LANGUAGES, progress=False)
    assert scan.report["shards_unreadable"] == [cut]
    assert list(scan.records.shard) == [good]  # nothing of the cut shard is kept, so "a" is no duplicate
    assert scan.report["examples_in"] == 2
    scan.check()


def test_report_round_trips_through_json(pool, tmp_path):
    scan = scan_shards(pool, languages=LANGUAGES, progress=False)
    scan.to_json(tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text()) == scan.report


def test_check_raises_with_the_numbers_when_the_identity_fails(pool):
    scan = scan_shards(pool, languages=LANGUAGES, progress=False)
    broken = ShardScan(records=scan.records, report={**scan.report, "examples_in": scan.report["examples_in"] + 1})
    with pytest.raises(AssertionError, match=f"examples_in={scan.report['examples_in'] + 1}"):
        broken.check()


KINDS = {
    # kind: (tar members of one example, reason it is rejected for, or None if good)
    "good_jpeg": (lambda k, uid: example(k, uid=uid, language="en"), None),
    "good_png": (lambda k, uid: example(k, image=PNG, ext="png", uid=uid, language="de"), None),
    "truncated": (lambda k, uid: example(k, image=TRUNCATED_JPEG, uid=uid, language="en"), "corrupt_image"),
    "garbage": (lambda k, uid: example(k, image=GARBAGE, uid=uid, language="en"), "corrupt_image"),
    "no_image": (lambda k, uid: example(k, image=None, uid=uid, language="en"), "missing_image"),
    "no_caption": (lambda k, uid: example(k, caption=None, uid=uid, language="en"), "missing_caption"),
    "blank": (lambda k, uid: example(k, caption="   ", uid=uid, language="en"), "empty_caption"),
    "long": (lambda k, uid: example(k, caption="z" * 1025, uid=uid, language="en"), "oversized_caption"),
    "bad_language": (lambda k, uid: example(k, uid=uid, language="xx"), "unknown_language"),
}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(KINDS)), st.sampled_from("abcde")), max_size=16))
def test_random_mix_keeps_each_good_uid_once_and_accounts_for_every_example(mix):
    members = []
    for i, (kind, uid) in enumerate(mix):
        members += KINDS[kind][0](f"{i:04d}", uid)
    with tempfile.TemporaryDirectory() as tmp:
        shard = write_tar(os.path.join(tmp, "mix.tar"), members)
        scan = scan_shards([shard], languages=LANGUAGES, progress=False)
    good_uids = [uid for kind, uid in mix if KINDS[kind][1] is None]
    expected = {reason: 0 for reason in REASONS}
    for kind, _ in mix:
        if KINDS[kind][1] is not None:
            expected[KINDS[kind][1]] += 1
    expected["duplicate_uid"] = len(good_uids) - len(set(good_uids))
    assert scan.report["identity_holds"] and scan.report["examples_in"] == len(mix)
    assert scan.report["rejected"] == expected
    assert sorted(scan.records.uid) == sorted(set(good_uids))
    assert all(len(scan.report["samples"][r]) == min(n, 10) for r, n in expected.items())
