"""Evaluations: the real evaluation sets read from their official formats (`real_sets`), the paper's
protocols (zero-shot, retrieval, few-shot probe, fairness) as pure functions of embeddings and labels
(`protocols`), and its per-group averages of Table 11 (`groups`)."""
