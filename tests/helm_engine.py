"""Helm's engine (helm-python-sdk) in a process of its own, for tests/helm_chart.py.

helm-python-sdk loads Helm's Go library into the process that imports it. A Go runtime
sharing the pytest process with TensorFlow, OpenVINO and the rest crashed that process (a
segmentation fault in the whole suite, never in the chart's tests alone), so the engine runs
here instead: one JSON request on stdin, one JSON answer on stdout, ``{"result": ...}`` or
``{"error": <helm-python-sdk's error class>, "message": ...}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import helm_python


def serve(request: dict) -> dict:
    chart = Path(request["chart"])
    try:
        if request["action"] == "render":
            with helm_python.Chart.load(chart) as loaded:
                result = loaded.render(
                    request["values"], name=request["name"], namespace=request["namespace"]
                )
        else:
            result = helm_python.lint(
                chart, request["values"], strict=True, kube_version=request["kube_version"]
            )
    except helm_python.HelmError as error:
        return {"error": type(error).__name__, "message": str(error)}
    return {"result": result}


if __name__ == "__main__":
    json.dump(serve(json.load(sys.stdin)), sys.stdout)
