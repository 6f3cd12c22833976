"""The `klambda` command line: the same verbs in local and cluster mode."""
