"""Layer references, the merge order of /opt and the 250 MB limit (pure)."""

from __future__ import annotations

import pytest
from klambda.api import layer, limits
from klambda.api.function import FunctionSpec
from pydantic import ValidationError


def test_refs_by_name_or_arn() -> None:
    assert layer.parse_ref("lib:3") == layer.LayerRef("lib", 3)
    arn = layer.layer_arn("eu-west-1", "123456789012", "lib", 7)
    assert arn == "arn:aws:lambda:eu-west-1:123456789012:layer:lib:7"
    assert layer.parse_ref(arn) == layer.LayerRef("lib", 7)
    with pytest.raises(ValueError, match="NAME:VERSION"):
        layer.parse_ref("lib")


def test_later_layers_win() -> None:
    merged = layer.merge_order([{"a": b"1", "b": b"1"}, {"b": b"2"}, {"c": b"3"}])
    assert merged == {"a": b"1", "b": b"2", "c": b"3"}


def test_size_limit_has_lambdas_message() -> None:
    layer.check_size(100, [limits.UNZIPPED_MAX_BYTES - 100])  # exactly the limit: fine
    with pytest.raises(ValueError, match="exceeds the maximum allowed size") as err:
        layer.check_size(101, [limits.UNZIPPED_MAX_BYTES - 100])
    assert str(err.value) == (
        "spec.layers: Function code combined with layers exceeds the maximum allowed size "
        "of 262144000 bytes. The actual size is 262144001 bytes."
    )


def _spec(layers: list[str]) -> FunctionSpec:
    return FunctionSpec.model_validate(
        {
            "handler": "a.b",
            "runtime": "python3.11",
            "code": {"inline": {"a.py": ""}},
            "layers": layers,
        }
    )


def test_at_most_five_layers() -> None:
    assert len(_spec([f"l{i}:1" for i in range(5)]).layers) == 5
    with pytest.raises(ValidationError, match="at most 5"):
        _spec([f"l{i}:1" for i in range(6)])
    with pytest.raises(ValidationError, match=r"layers\.0"):
        _spec(["not a ref"])


def test_layer_crd_agrees_with_the_model() -> None:
    from pathlib import Path

    import yaml
    from klambda.api.layer import LayerContent, LayerSpec

    crd = yaml.safe_load((Path(__file__).resolve().parents[3] / "crds" / "layers.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]["properties"]
    assert set(spec) == {f.alias or n for n, f in LayerSpec.model_fields.items()}
    content = LayerContent.model_fields.items()
    assert set(spec["content"]["properties"]) == {f.alias or n for n, f in content}
    rule = schema["x-kubernetes-validations"][0]["rule"]
    assert limits.LAYER_NAME_PATTERN in rule
