"""The machine fingerprint ``placement`` keeps its answer under: it changes with everything ``auto`` reads."""

from __future__ import annotations

from pathlib import Path

from pipeline.visual import machine

CPUINFO = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 sse\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 sse\n"


def fake_machine(root: Path, flags: str = "fpu avx2 sse", gpu: bool = False) -> Path:
    (root / "proc").mkdir(parents=True, exist_ok=True)
    (root / "proc/cpuinfo").write_text(CPUINFO.replace("fpu avx2 sse", flags))
    (root / "dev").mkdir(exist_ok=True)
    (root / "dev/null").write_text("")
    if gpu:
        (root / "dev/nvidia0").write_text("")
        info = root / "proc/driver/nvidia/gpus/0000:01:00.0"
        info.mkdir(parents=True)
        (info / "information").write_text("Model: NVIDIA H100\n")
        (root / "proc/driver/nvidia/version").write_text("NVRM version: 550.54\n")
    return root


def test_the_same_machine_gives_the_same_fingerprint_and_flag_order_does_not_matter(tmp_path):
    a = machine.fingerprint(fake_machine(tmp_path / "a"))
    b = machine.fingerprint(fake_machine(tmp_path / "b", flags="sse fpu avx2"))
    assert a == b and len(a) == 16 and int(a, 16) >= 0


def test_what_auto_depends_on_changes_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    base = machine.fingerprint(fake_machine(tmp_path / "base"))
    bf16 = machine.fingerprint(fake_machine(tmp_path / "bf16", flags="fpu avx2 sse avx512_bf16"))
    gpu_root = fake_machine(tmp_path / "gpu", gpu=True)
    gpu = machine.fingerprint(gpu_root)
    (gpu_root / "proc/driver/nvidia/version").write_text("NVRM version: 560.01\n")
    driver = machine.fingerprint(gpu_root)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    hidden = machine.fingerprint(gpu_root)
    assert len({base, bf16, gpu, driver, hidden}) == 5


def test_no_fingerprint_where_the_cpu_cannot_be_read(tmp_path):
    (tmp_path / "dev").mkdir()
    assert machine.fingerprint(tmp_path) is None
