"""The evals modules import with the heavy engine/orchestration packages blocked."""

import subprocess
import sys

BLOCKED = ["ray", "vllm", "deepspeed", "prefect", "mlflow", "torch"]

SCRIPT = f"""
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("blocked: " + name)
        return None
sys.meta_path.insert(0, _Block())
from flywheel.evals import disjoint, ifeval, math_suite, stats, suites
disjoint.overlap_report(suites.build_math()[:3], disjoint.training_texts(math_seeds=10))
print("ok")
"""


def test_evals_import_without_engines():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
