"""The probe set's concept groups and the pools the attention summary averages over (no heavy imports: the
figures stage reads them)."""
GROUPS = ("culture", "regional", "landmark", "head")
CULTURAL = ("culture", "regional", "landmark")  # the long-tail groups finding 8 sets against the head
GROUP_LABELS = {"culture": "culture-specific", "regional": "regional variants", "landmark": "landmarks",
                "head": "common (Western head)", "cultural": "long tail (pooled)", "all": "all"}
POOLS = {**{g: (g,) for g in GROUPS}, "cultural": CULTURAL, "all": GROUPS}
METRICS = ("energy", "lift", "hit")  # scores a model changes
SCORES = ("energy", "hit")  # the scores finding 8 is tested on (evidence), each with its blind baselines
# what blind maps score (attention/baselines.py): uniform (area), random peak (hit_chance), the centre prior
# (prior_*), the model's own map of another image (shuffled_*), and energy's bound on the grid (energy_bound)
BASELINES = ("area", "hit_chance", "prior_energy", "prior_hit", "shuffled_energy", "shuffled_hit", "energy_bound")
