"""apckx.crypto is pure: it never imports boto3 or botocore (and does no file I/O)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

CRYPTO_DIR = Path(__file__).resolve().parents[2] / "src" / "apckx" / "crypto"


def test_crypto_never_imports_boto() -> None:
    modules = sorted(p.stem for p in CRYPTO_DIR.glob("*.py") if p.stem != "__init__")
    assert {"attributes", "certs", "components", "ecdh", "kcv", "kdf", "keys", "tr31"} <= set(
        modules
    )
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module('apckx.crypto.' + name)\n"
        "print(json.dumps(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('boto3', 'botocore', 'apckx'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    assert not [m for m in loaded if m.split(".")[0] in ("boto3", "botocore")]
    # Only the crypto package and the error hierarchy come along.
    assert {m for m in loaded if not m.startswith("apckx.crypto")} == {"apckx", "apckx.errors"}


def test_crypto_sources_do_no_io() -> None:
    forbidden = {"open", "print", "input"}
    for path in CRYPTO_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in forbidden, f"{path.name}:{node.lineno}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                for name in names:
                    root = name.split(".")[0]
                    assert root not in {"boto3", "botocore", "pathlib", "logging", "apckx.keystore"}
                    assert not name.startswith(("apckx.keystore", "apckx.service")), path.name
