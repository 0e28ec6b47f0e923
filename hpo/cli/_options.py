"""Help texts that several verbs share, written once."""

STORAGE_HELP = "Optuna storage URL (default as for `hpo run`)."
STUDY_HELP = "Study name. Default: the most recently created study."
