"""The klambda operator: reconciles Function, Version and Alias resources into pods."""
