"""The klambda command loads without the optional extras: the router and worker images
install klambda without `deploy`, `tune`, `operator` or `dev`, and run `klambda router` /
`klambda worker`."""

import subprocess
import sys

EXTRAS = ("simpleeval", "cfnlint", "samtranslator", "matplotlib", "kopf", "boto3")


def test_the_command_imports_no_optional_extra() -> None:
    code = (
        f"import sys, klambda.cli.main; print(','.join(m for m in {EXTRAS!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
