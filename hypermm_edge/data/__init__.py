"""Cohorts on disk: labels.csv plus one folder per patient; and a synthetic cohort maker."""
