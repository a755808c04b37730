"""``softgso bench --only jobs`` (softgso.cli.bench_jobs) on small inputs: every timed command's output
checked before it counts (OUT is IN for the datagrams, segcheck's verdict for the super-packets, every
--jobs N's bytes and inspect report the one job's), and the model's parts add up to the whole: their
outputs' sizes to one job's OUT, their records to every record."""

from __future__ import annotations

from pathlib import Path

from softgso.cli import bench_jobs


def test_jobs_measurement_on_small_captures(tmp_path: Path) -> None:
    report = bench_jobs.measure_jobs(tmp_path, 6 << 20, 1, real=(1, 2), modelled=(1, 2))
    for name in ("datagrams", "super_packets"):
        assert report[f"jobs_{name}_output_check"]["ok"]
        assert report[f"jobs_{name}_outputs_identical"] and report[f"jobs_{name}_inspect_reports_identical"]
        runs = report[f"jobs_{name}_runs"]
        assert set(runs) >= {"cp", "jobs1", "jobs2"} and all(len(timed) == 1 for timed in runs.values())
        for n in ("1", "2"):
            model = report[f"jobs_{name}_model"][n]
            assert len(model["parts"]) == int(n)
            # the parts' files hold the records alone; one job's OUT adds the file's head to them
            head = report[f"jobs_{name}_output_bytes"] - sum(part["bytes_out"] for part in model["parts"])
            assert 0 < head <= 256
            assert model["appended_bytes"] == sum(part["bytes_out"] for part in model["parts"][1:])
            assert model["makespan_s"] >= max(part["wall_s"] for part in model["parts"])
            assert model["makespan_cpu_s"] >= max(part["cpu_s"] for part in model["parts"])
            # (6 MiB: 96 records of 64 KB, two polls of 64 records at most: inspect cuts after 64)
            assert len(report[f"jobs_{name}_inspect_model"][n]["parts"]) == int(n)
    assert "parts2" in report["jobs_super_packets_runs"]  # one job does them as typed: their parts forced too


def test_appends_by_each_method(tmp_path: Path) -> None:
    report = bench_jobs.measure_appends(2 << 20, directories=(str(tmp_path),), repeat=1)
    label = str(tmp_path).strip("/").replace("/", "_")
    for method in ("sendfile", "copy_file_range", "read_write"):
        assert len(report[f"append_{label}_{method}"]) == 1
