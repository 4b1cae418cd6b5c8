"""The operating modules import with ray, prefect and mlflow blocked: those load only when called."""

import subprocess
import sys

MODULES = ["flywheel.ops.compare", "flywheel.ops.report", "flywheel.ops.naming", "flywheel.ops.submit",
           "flywheel.ops.services", "flywheel.ops.deploy", "flywheel.ops.commands"]

SCRIPT = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'ray', 'vllm', 'deepspeed', 'prefect', 'mlflow'}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import importlib
for m in %r:
    importlib.import_module(m)
print('ok')
"""


def test_ops_modules_do_not_import_engines_or_services():
    res = subprocess.run([sys.executable, "-c", SCRIPT % MODULES], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "ok"
