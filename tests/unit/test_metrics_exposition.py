"""The shared-files exposition of GET /metrics gives the samples prometheus-client's own
MultiProcessCollector gives for the same files, in a text its parser reads, with the jobs
gauge; new label sets appear in the next scrape."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import json, sys, tempfile, pathlib
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.parser import text_string_to_metric_families
    from vmimage.adapters.metrics.prometheus import share_between_processes, PrometheusMeter

    def parsed(text):
        return sorted((s.name, sorted(s.labels.items()), s.value)
                      for f in text_string_to_metric_families(text) for s in f.samples)

    directory = pathlib.Path(tempfile.mkdtemp()) / "metrics"
    share_between_processes(directory)
    meter = PrometheusMeter(lambda: {("image_import", "SUCCESS"): 3, ("member_batch", "FAIL"): 1})
    first = meter.scrape().decode()
    meter.request("glance_v2", "GET", "/v2/images/{image_id}", 200, 0.003)
    meter.request("glance_v2", "GET", "/v2/images/{image_id}", 200, 0.7)
    meter.request("keystone", "BREW", 'odd"route\\\\', 404, 42.0)
    meter.uploaded("glance_v2", 10); meter.uploaded("glance_v2", 5); meter.downloaded("aries", 7)
    meter.job_finished("image_import", "SUCCESS", 2.5); meter.store_error("obj", "write a part")
    meter.login_failure("keystone"); meter.signature_failure("huawei_ims")
    ours = meter.scrape().decode()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))
    theirs = generate_latest(registry).decode()
    jobs = [s for s in parsed(ours) if s[0] == "vmimage_jobs"]
    same = parsed(ours) == sorted(parsed(theirs) + jobs)
    meter.request("glance_v2", "GET", "/v2/images/{image_id}", 200, 0.02)    # one series moves, the others not
    again = meter.scrape().decode()
    same_again = parsed(again) == sorted(parsed(generate_latest(registry).decode()) + jobs)
    print(json.dumps({"same": same and same_again and again != ours, "jobs": jobs,
                      "first": parsed(first), "ours": ours}))
''')


def test_shared_exposition_matches_prometheus_client(tmp_path):
    import json

    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["same"], result["ours"]
    assert [s[1] for s in result["jobs"]] == [[["kind", "image_import"], ["status", "SUCCESS"]],
                                             [["kind", "member_batch"], ["status", "FAIL"]]]
    assert [s[0] for s in result["first"]] == ["vmimage_jobs", "vmimage_jobs"]
    assert 'method="other"' in result["ours"]          # a client's own verb is no label value
    assert 'vmimage_http_request_duration_seconds_bucket{face="glance_v2",route="/v2/images/{image_id}",le="1.0"} 2.0' \
        in result["ours"]
