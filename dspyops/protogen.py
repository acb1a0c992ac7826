"""Regenerate the committed stubs in dspyops/proto from protos/ (`make proto`).

protoc names modules after the proto paths (`dspyops.v1.events_pb2`); the stubs live flat
in `dspyops.proto`, so their cross-imports are rewritten to match.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
OUT_DIR = ROOT / "dspyops" / "proto"
# "from dspyops.v1 import x" and (an `import public`) "from dspyops.v1.x_pb2 import *"
_IMPORT = re.compile(r"^from dspyops\.v1(?=[. ])", re.MULTILINE)


def generate(out_dir: Path) -> list[Path]:
    """Generate *_pb2.py, *_pb2.pyi and *_pb2_grpc.py into out_dir; return the files written."""
    import grpc_tools

    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for src in sorted(Path(tmp).rglob("*_pb2*.py*")):
            text = _IMPORT.sub("from dspyops.proto", src.read_text())
            dst = out_dir / src.name
            dst.write_text(text)
            written.append(dst)
    init = out_dir / "__init__.py"
    if not init.exists():
        init.write_text('"""Generated protobuf and gRPC stubs (make proto). Do not edit."""\n')
    return written


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))  # raises before anything is touched if protoc fails
        for stale in OUT_DIR.glob("*_pb2*.py*"):
            stale.unlink()
        files = [Path(shutil.copy2(f, OUT_DIR / f.name)) for f in fresh]
    print(f"generated {len(files)} files in {OUT_DIR.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
