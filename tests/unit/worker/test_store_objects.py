"""The code store's contract: object keys (their own check), the worker pod's environment
naming its objects, and what may be unpacked from them (paths, links, modes, sizes)."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile

import pytest
from klambda.api.layer import check_size
from klambda.contract import (
    CODE_OBJECT_ENV,
    LAYER_OBJECTS_ENV,
    OBJECT_CODE,
    OBJECT_LAYER,
    OPT_ROOT_ENV,
    STORE_URL_ENV,
    ObjectKey,
    StoreObjects,
    WorkerConfigError,
    object_key,
    parse_object_key,
    store_environment,
    store_objects_from_environment,
)
from klambda.worker.archives import (
    ArchiveError,
    entry_path,
    file_mode,
    link_stays_inside,
    unzipped_size,
)

HEX = hashlib.sha256(b"zip bytes").hexdigest()
URL = "http://klambda-store.klambda-system.svc:9000/klambda"


@pytest.mark.parametrize(
    ("kind", "key"), [(OBJECT_CODE, f"code/{HEX}.zip"), (OBJECT_LAYER, f"layers/{HEX}.zip")]
)
def test_an_object_is_named_by_its_bytes(kind: str, key: str) -> None:
    assert object_key(kind, b"zip bytes") == key
    assert parse_object_key(key) == ObjectKey(kind, HEX)
    assert str(parse_object_key(key)) == key


def test_an_object_key_is_of_code_or_layers() -> None:
    with pytest.raises(ValueError, match="'code' or 'layers'"):
        object_key("images", b"")


@pytest.mark.parametrize(
    "key",
    [
        f"code/{HEX}",
        f"code/{HEX.upper()}.zip",
        f"code/{HEX[:-1]}.zip",
        f"/code/{HEX}.zip",
        f"code/../layers/{HEX}.zip",
        f"code/{HEX}.zip/..",
        f"functions/{HEX}.zip",
        f"code/sub/{HEX}.zip",
        f"code/{HEX}.zip\n",
        "",
    ],
)
def test_anything_else_is_no_object_key(key: str) -> None:
    with pytest.raises(ValueError, match="is not an object of the store"):
        parse_object_key(key)


def test_an_object_key_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="not an object of layers/"):
        parse_object_key(f"code/{HEX}.zip", OBJECT_LAYER)


def test_the_code_sha256_of_a_code_object_is_lambda_s() -> None:
    expected = base64.b64encode(hashlib.sha256(b"zip bytes").digest()).decode()
    assert parse_object_key(f"code/{HEX}.zip").code_sha256 == expected


CODE = f"code/{HEX}.zip"
LAYERS = (f"layers/{'a' * 64}.zip", f"layers/{'b' * 64}.zip")
SHA = {"KLAMBDA_CODE_SHA256": parse_object_key(CODE).code_sha256}


@pytest.mark.parametrize(
    ("code", "layers", "extra", "objects"),
    [
        (CODE, LAYERS, {}, StoreObjects(URL, CODE, LAYERS, "/opt")),
        (CODE, (), {}, StoreObjects(URL, CODE, (), "/opt")),
        ("", LAYERS, {OPT_ROOT_ENV: "/tmp/opt"}, StoreObjects(URL, "", LAYERS, "/tmp/opt")),
    ],
)
def test_the_worker_reads_back_the_objects_the_operator_names(
    code: str, layers: tuple[str, ...], extra: dict[str, str], objects: StoreObjects
) -> None:
    env = store_environment(URL, code, layers) | SHA | extra
    assert store_objects_from_environment(env) == objects


def test_a_pod_with_no_objects_has_its_code_mounted() -> None:
    assert store_objects_from_environment({STORE_URL_ENV: URL}) is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({CODE_OBJECT_ENV: CODE} | SHA, f"{STORE_URL_ENV} is not set"),
        (
            {STORE_URL_ENV: URL, CODE_OBJECT_ENV: CODE, "KLAMBDA_CODE_SHA256": "c2hh"},
            "KLAMBDA_CODE_SHA256 'c2hh' is not the CodeSha256",
        ),
        ({STORE_URL_ENV: URL, CODE_OBJECT_ENV: LAYERS[0]}, f"{CODE_OBJECT_ENV}: .* not an object"),
        ({STORE_URL_ENV: URL, LAYER_OBJECTS_ENV: f"{CODE}"}, f"{LAYER_OBJECTS_ENV}: .* not an"),
        (
            {STORE_URL_ENV: URL, LAYER_OBJECTS_ENV: "layers/../x.zip"},
            f"{LAYER_OBJECTS_ENV}: .* not an object of the store",
        ),
        ({STORE_URL_ENV: URL, LAYER_OBJECTS_ENV: ",".join(LAYERS * 3)}, "6 layers, more than 5"),
    ],
)
def test_a_pod_environment_naming_objects_wrongly(env: dict[str, str], message: str) -> None:
    with pytest.raises(WorkerConfigError, match=message):
        store_objects_from_environment(env)


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("app.py", "app.py"),
        ("pkg/mod.py", "pkg/mod.py"),
        ("./pkg//mod.py", "pkg/mod.py"),
        ("python/lib/", "python/lib"),
        ("pkg\\mod.py", "pkg/mod.py"),  # a zip made on Windows
        ("a..b/c", "a..b/c"),
    ],
)
def test_entry_paths(name: str, path: str) -> None:
    assert entry_path(name) == path


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "../x", "a/../../x", "a/..", "..\\x", "", "./", "//x"]
)
def test_entries_that_would_leave_the_root_are_refused(name: str) -> None:
    with pytest.raises(ArchiveError, match="outside the root"):
        entry_path(name)


@pytest.mark.parametrize(
    ("path", "target", "inside"),
    [
        ("lib/libx.so", "libx.so.1", True),
        ("lib/libx.so", "../lib64/libx.so", True),
        ("a/b/c", "../../d", True),
        ("a/b/c", "../../../d", False),
        ("top", "..", False),
        ("top", ".", True),
        ("a/link", "sub/../../x", False),  # `..` after a name: that name may be a link
        ("a/link", "/opt/lib/x", True),
        ("a/link", "/opt", True),
        ("a/link", "/opt/../etc/passwd", False),
        ("a/link", "/optional/x", False),
        ("a/link", "/etc/passwd", False),
        ("a/link", "", False),
    ],
)
def test_links_stay_inside_the_root(path: str, target: str, inside: bool) -> None:
    assert link_stays_inside(path, target, "/opt") is inside


def info(name: str, mode: int) -> zipfile.ZipInfo:
    i = zipfile.ZipInfo(name)
    i.external_attr = mode << 16
    return i


@pytest.mark.parametrize(
    ("name", "mode", "kept"),
    [
        ("bootstrap", 0o100755, 0o555),
        ("app.py", 0o100644, 0o444),
        ("tool", 0o100700, 0o544),
        ("secret", 0o100600, 0o444),  # readable: the function may run as another uid
        ("bin/tool", 0o100775, 0o555),
        # archives without Unix modes: what Lambda runs stays executable
        ("bootstrap", 0, 0o555),
        ("bin/tool", 0, 0o555),
        ("extensions/agent", 0, 0o555),
        ("bin/sub/data", 0, 0o444),
        ("lib/libx.so", 0, 0o444),
        ("sub/bootstrap", 0, 0o444),
    ],
)
def test_file_modes(name: str, mode: int, kept: int) -> None:
    assert file_mode(info(name, mode), name) == kept


def archive_of(sizes: dict[str, int]) -> zipfile.ZipFile:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(info("folder/", 0o40755), b"")
        for name, size in sizes.items():
            z.writestr(name, bytes(size))
    return zipfile.ZipFile(io.BytesIO(out.getvalue()))


def test_the_unzipped_size_of_code_and_layers_is_checked_together() -> None:
    code = unzipped_size(archive_of({"app.py": 100, "folder/lib.py": 50}))
    layers = [unzipped_size(archive_of({"python/x.py": 1000}))]
    assert (code, layers) == (150, [1000])
    check_size(code, layers)
    limit = 250 * 1024 * 1024
    check_size(limit - 1000, layers)
    with pytest.raises(ValueError, match=f"The actual size is {limit + 1} bytes"):
        check_size(limit - 999, layers)
