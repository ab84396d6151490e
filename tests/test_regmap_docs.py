"""docs/registers.md and docs/tickwire_regs.h are generated from the description and must be
current (``python -m tickwire.hw.regmap.generate`` rewrites them)."""

import shutil
import subprocess

import pytest

from tickwire.hw.regmap import generate
from tickwire.spec.regmap import REGMAP


def test_committed_reference_is_current():
    outs = generate.outputs()
    assert generate.README in outs, "README.md lost its <!-- regmap-table --> section"
    assert generate.readme_section() in outs[generate.README]
    for path, text in outs.items():
        assert path.exists(), f"{path} missing: run python -m tickwire.hw.regmap.generate"
        assert path.read_text() == text, \
            f"{path.name} is stale: run python -m tickwire.hw.regmap.generate"
    assert generate.main(["--check"]) == 0


def test_reference_content():
    md = generate.markdown()
    assert f"0x{REGMAP.hash:08x}" in md
    for r in REGMAP.registers.values():
        assert f"### {r.name}" in md
    for t in REGMAP.tables.values():
        assert f"### {t.name}" in md
    h = generate.c_header()
    assert f"#define TW_MAP_HASH 0x{REGMAP.hash:08x}u" in h
    assert f"#define TW_TRIGGERS_BASE 0x{REGMAP.table('TRIGGERS').base:04x}u" in h
    assert "#define TW_CONTROL_KILL_MASK 0x00000002u" in h


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_c_header_compiles(tmp_path):
    src = tmp_path / "t.c"
    src.write_text(f'#include "{generate.DOCS / "tickwire_regs.h"}"\n'
                   "_Static_assert(TW_TRIGGERS_ADDR(2, 3) == TW_TRIGGERS_BASE + 44, \"addr\");\n"
                   "unsigned long long f(void) { return TW_CNT_FRAMES_FRAMES_MASK + "
                   "TW_MAP_HASH; }\n")
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-c", str(src), "-o",
                    str(tmp_path / "t.o")], check=True)
