"""Two-phase HyperMM training (and the end-to-end ablation) from a cohort folder."""
