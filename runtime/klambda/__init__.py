"""klambda: AWS Lambda's model on Kubernetes and on a laptop.

The data plane lives here: resource models (`klambda.api`), execution environments
(`klambda.environment`), the worker that hosts them (`klambda.worker`), the router that
admits and forwards invocations (`klambda.router`), and the `klambda` command line.
"""

__version__ = "0.1.0"
