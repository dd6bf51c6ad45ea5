"""Settings: the number of worker processes (auto by default), and TensorFlow's thread
pools that follow it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.runtime import settings as config
from service.runtime.settings import Settings


def test_one_worker_leaves_the_thread_pools_to_tensorflow() -> None:
    assert Settings(workers=1).tf_threads() == (0, 0)


def test_workers_split_the_cores_between_them(tmp_path: Path) -> None:
    cores = config.usable_cpus()
    assert Settings(workers=2, run_dir=tmp_path).tf_threads() == (max(1, cores // 2),) * 2
    assert Settings(workers=cores * 4, run_dir=tmp_path).tf_threads() == (1, 1)  # at least 1


def test_an_app_not_started_as_a_worker_keeps_all_cores() -> None:
    # e.g. ``uvicorn --factory service.main:create_app`` by hand with the default auto
    assert Settings(workers=2, run_dir=None).tf_threads() == (0, 0)


def test_explicit_thread_counts_win(tmp_path: Path) -> None:
    assert Settings(workers=2, run_dir=tmp_path, tf_intra_op_threads=3,
                    tf_inter_op_threads=2).tf_threads() == (3, 2)


def test_workers_default_to_one_per_usable_cpu_up_to_a_cap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNLAB_WORKERS", raising=False)
    monkeypatch.setattr(config, "gpu_present", lambda: False)
    for cpus, expected in ((1, 1), (2, 2), (3, 3), (64, config.MAX_AUTO_WORKERS)):
        monkeypatch.setattr(config, "usable_cpus", lambda n=cpus: n)
        assert Settings().workers == expected
        monkeypatch.setenv("CNNLAB_WORKERS", "AUTO")
        assert Settings().workers == expected
        monkeypatch.delenv("CNNLAB_WORKERS")


def test_auto_workers_is_one_on_a_gpu_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "usable_cpus", lambda: 8)
    monkeypatch.setattr(config, "gpu_present", lambda: True)
    assert Settings(workers="auto").workers == 1
    assert Settings(workers=3).workers == 3  # a number is taken as given


def test_workers_must_be_positive_or_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("0", "-1", "many"):
        monkeypatch.setenv("CNNLAB_WORKERS", bad)
        with pytest.raises(ValidationError):
            Settings()


@pytest.mark.parametrize(("cpu_max", "expected"), [
    ("200000 100000\n", 2.0), ("150000 100000", 1.5), ("max 100000\n", None),
    ("", None), ("garbage", None), ("100 0", None)])
def test_cgroup_cpu_quota(tmp_path: Path, cpu_max: str, expected: float | None) -> None:
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    assert config.cgroup_cpu_quota(path) == expected


def test_a_cpu_quota_lowers_the_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(config, "cgroup_cpu_quota", lambda: 0.5)
    assert config.usable_cpus() == 1
    monkeypatch.setattr(config, "cgroup_cpu_quota", lambda: None)
    assert config.usable_cpus() == affinity
    monkeypatch.setattr(config, "cgroup_cpu_quota", lambda: affinity + 10.0)
    assert config.usable_cpus() == affinity


def test_gpu_present_reads_the_driver_listing(tmp_path: Path) -> None:
    assert not config.gpu_present(tmp_path / "missing")
    assert not config.gpu_present(tmp_path)
    (tmp_path / "0000:01:00.0").mkdir()
    assert config.gpu_present(tmp_path)


def test_keys_may_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("inference-key\n")  # as a mounted Secret holds it
    (tmp_path / "admin").write_text("admin-key")
    s = Settings(api_key_file=tmp_path / "key", admin_api_key_file=tmp_path / "admin")
    assert (s.key(), s.key(admin=True)) == ("inference-key", "admin-key")
    assert "inference-key" not in repr(s)  # held as secrets


def test_admin_falls_back_to_the_api_key() -> None:
    assert Settings(api_key="k").key(admin=True) == "k"
    assert Settings().key(admin=True) is None


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"api_key": "k", "api_key_file": "KEYFILE"}, "not both"),
    ({"api_key_file": "EMPTY"}, "is empty"),
    ({"admin_api_key_file": "MISSING"}, "cannot read"),
])
def test_bad_key_settings_say_what_is_wrong(tmp_path: Path, kwargs: dict[str, str],
                                            needle: str) -> None:
    (tmp_path / "KEYFILE").write_text("k")
    (tmp_path / "EMPTY").write_text("\n")
    resolved = {k: (v if k == "api_key" else tmp_path / v) for k, v in kwargs.items()}
    with pytest.raises(ValidationError, match=needle):
        Settings(**resolved)  # type: ignore[arg-type]


@pytest.mark.parametrize(("host", "key", "exposed"), [
    ("0.0.0.0", None, True), ("::", None, True), ("10.0.0.5", None, True),
    ("0.0.0.0", "k", False), ("127.0.0.1", None, False), ("::1", None, False),
    ("localhost", None, False), ("0.0.0.0", "", True),  # an empty key is no key
])
def test_listening_beyond_loopback_without_a_key_is_flagged(host: str, key: str | None,
                                                            exposed: bool) -> None:
    assert Settings(host=host, api_key=key).exposed_without_key() is exposed  # type: ignore[arg-type]
