"""The probe set's concept groups and the pools the attention summary averages over (no heavy imports: the
figures stage reads them)."""
GROUPS = ("culture", "regional", "landmark", "head")
CULTURAL = ("culture", "regional", "landmark")  # the long-tail groups finding 8 sets against the head
GROUP_LABELS = {"culture": "culture-specific", "regional": "regional variants", "landmark": "landmarks",
                "head": "common (Western head)", "cultural": "long tail (pooled)", "all": "all"}
POOLS = {**{g: (g,) for g in GROUPS}, "cultural": CULTURAL, "all": GROUPS}
METRICS = ("energy", "lift", "hit")  # scores a model changes; area, hit_chance and oracle_energy are the images'
