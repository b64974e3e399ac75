"""The wheels dataset: pip's resolution split into shipped wheels and image pins, the image check a kernel runs
first, and (marker `wheels`) an offline install into a clean venv that then runs a tiny QA forward."""
import json
import os
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from research.kaggle_sim.sim import SOCKET_GUARD
from src.common.paths import CACHE_DIR, REPO_ROOT
from src.kaggle import install as kernel_install
from src.kaggle import wheels

ENV = {"python_version": "3.11", "python_full_version": "3.11.7", "sys_platform": "linux", "os_name": "posix",
       "platform_machine": "x86_64", "platform_system": "Linux", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "platform_release": "", "platform_version": "",
       "implementation_version": "3.11.7"}


def fake_dist(root: Path, name: str, version: str) -> None:
    """An installed-looking package (dist-info only) that importlib.metadata finds on sys.path."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


# ---------------------------------------------------------------- the image check
def test_image_check_names_package_found_needed_and_what_to_do(tmp_path, monkeypatch, capsys):
    fake_dist(tmp_path, "chaii-fake-old", "1.2.0")
    fake_dist(tmp_path, "chaii-fake-ok", "2.13.0+cpu")
    # a local version tag (Kaggle's and our torch) satisfies >=
    fake_dist(tmp_path, "chaii-fake-odd", "2.1-custom build")
    monkeypatch.syspath_prepend(str(tmp_path))
    ok = {"chaii-fake-ok": {"specifier": ">=2.4,<3", "needed_by": [">=2.4,<3 (by src/ of chaii-recipes)"]}}
    assert kernel_install.check_image(ok) is None
    assert capsys.readouterr() == ("", "")  # silent when satisfied
    bad = {**ok, "chaii-fake-old": {"specifier": ">=2.0", "needed_by": [">=2.0 (by datasets==5.2.0)"]},
           "chaii-fake-absent": {"specifier": "", "needed_by": ["any (by accelerate==1.15.0)"]},
           "chaii-fake-odd": {"specifier": ">=2.0", "needed_by": [">=2.0 (by src/ of chaii-recipes)"]}}
    with pytest.raises(kernel_install.ImageMismatch) as e:
        kernel_install.check_image(bad)
    msg = str(e.value)
    assert "chaii-fake-old: found 1.2.0, needed >=2.0 (for >=2.0 (by datasets==5.2.0))" in msg
    assert "chaii-fake-absent: not installed, needed any version" in msg
    assert "chaii-fake-odd: found 2.1-custom build, needed >=2.0" in msg  # unparseable: reported, not a crash
    assert "chaii-fake-ok" not in msg  # only the problems
    assert "Always use latest environment" in msg and "python -m src.kaggle.wheels build" in msg


def run_cell(source: str, work: Path) -> None:
    """Execute the install cell as the kernel would, with /kaggle/working as the current directory."""
    here = os.getcwd()
    os.chdir(work)
    try:
        exec(compile(source, "install_cell", "exec"), {"__name__": "__main__"})
    finally:
        os.chdir(here)


def test_install_cell_stops_before_pip_on_a_bad_image_or_a_missing_dataset(tmp_path, monkeypatch):
    work, wh = tmp_path / "kaggle" / "working", tmp_path / "kaggle" / "input" / "my-wheels"
    work.mkdir(parents=True)
    source = kernel_install.install_cell_source("my-wheels")
    compile(source, "install_cell", "exec")  # plain Python: it also runs outside Jupyter
    assert '"--no-index"' in source and '"--find-links"' in source and '"--no-deps"' not in source
    with pytest.raises(FileNotFoundError, match="attach the dataset my-wheels"):
        run_cell(source, work)
    wh.mkdir(parents=True)
    # pip would fail on this requirement: the check must stop the cell first, with its own message
    (wh / "requirements.txt").write_text("no-such-package-chaii==1.0\n")
    fake_dist(tmp_path / "site", "chaii-fake-torch", "1.13.1")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    (wh / "image-pins.json").write_text(json.dumps(
        {"chaii-fake-torch": {"specifier": ">=2.4,<3", "needed_by": [">=2.4,<3 (by src/ of chaii-recipes)"]}}))
    with pytest.raises(Exception) as e:
        run_cell(source, work)
    assert type(e.value).__name__ == "ImageMismatch"  # the cell's own copy of the class
    assert "chaii-fake-torch: found 1.13.1, needed >=2.4,<3 (for >=2.4,<3 (by src/ of chaii-recipes))" in str(e.value)
    # a satisfied image goes on to pip, whose offline refusal is raised with pip's output
    (wh / "image-pins.json").write_text(json.dumps({}))
    with pytest.raises(RuntimeError,
                       match="offline install from ../input/my-wheels failed(.|\n)*no-such-package-chaii"):
        run_cell(source, work)


# ---------------------------------------------------------------- requirements and exclusions
def resolved(name, version="1.0", requires=(), extras=(), requested=False):
    return wheels.Resolved(name, version, tuple(requires), tuple(extras), requested)


def test_closure_ships_what_roots_reach_without_passing_through_the_image():
    report = [
        resolved("datasets", "5.2.0", ["dill>=0.3", "numpy>=1.17", "pyarrow>=24.0.0", 'torch; extra == "torch"',
                                       'old-backport; python_version < "3.8"', "fsspec[http]<=2026.9"],
                 requested=True),
        resolved("accelerate", "1.15.0", ["torch>=2.0.0", "numpy>=1.17", "psutil"], extras=["testing"],
                 requested=True),
        resolved("dill", "0.4.1"), resolved("fsspec", "2026.9.0", ['aiohttp; extra == "http"']),
        resolved("aiohttp", "3.0"),
        resolved("torch", "2.14.1", ["nvidia-cublas", "filelock"]), resolved("nvidia-cublas", "13"),
        resolved("filelock", "4.3"), resolved("numpy", "2.4.6"), resolved("pyarrow", "26.0.1"),
        resolved("psutil", "7.2.2"), resolved("old-backport", "1.0"),
    ]
    ship, needs = wheels.split_closure(report, ENV)
    assert [r.name for r in ship] == ["accelerate", "aiohttp", "datasets", "dill", "fsspec"]
    # CUDA libraries and filelock are reached only through torch; the backport's marker is false; no torch extra
    assert needs == {"numpy": [">=1.17 (by accelerate==1.15.0)", ">=1.17 (by datasets==5.2.0)"],
                     "psutil": ["any (by accelerate==1.15.0)"], "pyarrow": [">=24.0.0 (by datasets==5.2.0)"],
                     "torch": [">=2.0.0 (by accelerate==1.15.0)"]}
    with_torch_extra = [resolved("datasets", "5.2.0", ['torch; extra == "torch"'], extras=["torch"], requested=True),
                        resolved("torch", "2.14.1")]
    assert wheels.split_closure(with_torch_extra, ENV)[1] == {"torch": ["any (by datasets==5.2.0)"]}
    with pytest.raises(ValueError, match="pip's report has no 'dill', which datasets==5.2.0 requires"):
        wheels.split_closure([resolved("datasets", "5.2.0", ["dill"], requested=True)], ENV)


def test_image_pins_merge_our_ranges_with_the_shipped_wheels():
    pins = wheels.image_pins({"numpy": [">=1.17 (by datasets==5.2.0)"], "psutil": ["any (by accelerate==1.15.0)"]},
                             own={"numpy": ">=2.0,<3", "torch": ">=2.4,<3"})
    assert set(pins) == {"numpy", "psutil", "torch"}
    from packaging.specifiers import SpecifierSet
    numpy = SpecifierSet(pins["numpy"]["specifier"])
    assert "2.4.6" in numpy and "1.26.4" not in numpy and "3.0.0" not in numpy
    assert pins["numpy"]["needed_by"] == [">=2.0,<3 (by src/ of chaii-recipes)", ">=1.17 (by datasets==5.2.0)"]
    assert pins["psutil"]["specifier"] == ""
    # the table of what src/ needs from the image holds the compiled core, and none of it is ever shipped
    assert {"torch", "numpy", "pandas"} <= set(wheels.IMAGE_PINS) <= wheels.IMAGE_PROVIDED
    assert {"pyarrow", "scipy", "scikit-learn"} <= wheels.IMAGE_PROVIDED
    assert not set(wheels.HF_STACK) & wheels.IMAGE_PROVIDED


def test_roots_are_the_pinned_hf_stack_of_requirements_txt(tmp_path):
    reqs = wheels.hf_requirements()
    assert reqs == [f"{name}=={metadata.version(name)}" for name in wheels.HF_STACK]  # what this venv runs
    path = tmp_path / "requirements.txt"
    path.write_text("transformers==5.23.0  # note\ntokenizers\n")
    with pytest.raises(ValueError, match=r"requirements.txt: no pinned line for datasets, accelerate, safetensors"):
        wheels.hf_requirements(path)


def test_platform_tags_cover_older_glibc_levels():
    tags = wheels.platform_tags("manylinux_2_35_x86_64")
    assert tags[0] == "manylinux_2_35_x86_64" and "manylinux_2_17_x86_64" in tags and "manylinux_2_5_x86_64" in tags
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(tags)
    assert "manylinux_2_36_x86_64" not in tags
    assert wheels.platform_tags("manylinux_2_12_x86_64")[-2:] == ["manylinux2010_x86_64", "manylinux1_x86_64"]
    assert wheels.platform_tags("win_amd64") == ["win_amd64"]


# ---------------------------------------------------------------- offline install into a clean venv
KERNEL = '''
import json, sys
import datasets, tokenizers, torch, transformers
from src.data.load import load_chaii_csv
from src.infer.postprocess import predict_texts
from src.infer.predict import predict_examples

examples = load_chaii_csv(sys.argv[1], split="test").head(3)
ds = datasets.Dataset.from_pandas(examples[["id", "question", "context"]])  # pyarrow from the image
logits = predict_examples(sys.argv[2], examples, batch_size=4)
answers = predict_texts(examples, logits)
print("RESULT " + json.dumps({"answers": answers, "rows": ds.num_rows, "windows": len(logits),
      "versions": {m.__name__: m.__version__ for m in (transformers, tokenizers, datasets, torch)},
      "files": {m.__name__: m.__file__ for m in (transformers, tokenizers, datasets, torch)}}))
'''


def offline_env(site: Path) -> dict:
    """No pip configuration (this machine's find-links would leak in), network blocked, hub offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    return dict(env, PIP_CONFIG_FILE=os.devnull, PYTHONPATH=str(site), CHAII_NO_NETWORK="1", HF_HUB_OFFLINE="1",
                HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def image_wheelhouse(requirements: list[str]) -> Path:
    """Wheels of 'Kaggle's image' (this venv's versions), cached across runs under ~/.cache/chaii-recipes."""
    cache = CACHE_DIR / "kaggle-image-wheels"
    base = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary=:all:",
            "-d", str(cache)]
    if subprocess.run([*base, "--no-index", "--find-links", str(cache), *requirements], capture_output=True).returncode:
        out = subprocess.run([*base, *requirements], capture_output=True, text=True)
        assert out.returncode == 0, f"downloading the image's wheels into {cache} failed:\n{out.stderr}"
    return cache


def run(cmd, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kw)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out


@pytest.mark.wheels
def test_wheels_install_offline_into_a_clean_venv_and_run_a_kernel(tmp_path, tiny_dirs):
    t0 = time.time()
    kin, work = tmp_path / "kaggle" / "input", tmp_path / "kaggle" / "working"
    work.mkdir(parents=True)
    python_version, platform = wheels.local_target()
    stale = kin / wheels.WHEELS_SLUG / "old_package-0.1-py3-none-any.whl"  # from an earlier build
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    dest = wheels.build_wheels(kin / wheels.WHEELS_SLUG, "tester", python_version=python_version, platform=platform)
    shipped = (dest / "requirements.txt").read_text().split()
    assert not stale.exists() and len(list(dest.glob("*.whl"))) == len(shipped)
    pins = json.loads((dest / "image-pins.json").read_text())
    assert {"transformers", "tokenizers", "datasets", "accelerate", "safetensors", "huggingface-hub"} <= \
        {line.split("==")[0] for line in shipped}
    assert {"torch", "numpy", "pandas", "pyarrow"} <= set(pins)
    assert not [w for w in dest.glob("*.whl") if w.name.startswith(("torch-", "numpy-", "pandas-", "pyarrow-",
                                                                     "nvidia"))]
    t_build = time.time()

    # 'Kaggle's image': the pinned packages at this machine's versions, installed offline into a clean venv
    image = [f"{name}=={metadata.version(name)}" for name in pins]
    cache = image_wheelhouse(image)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SOCKET_GUARD)
    env = offline_env(site)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], env=env)
    py = venv / "bin" / "python"
    assert run([py, "-c", "import sys; print(sys.prefix != sys.base_prefix)"], env=env).stdout.strip() == "True"
    assert run([py, "-m", "pip", "list", "--format=freeze"], env=env).stdout.count("==") <= 3  # pip, setuptools
    run([py, "-m", "pip", "install", "-q", "--no-index", "--find-links", cache, *image], env=env)
    bare = subprocess.run([py, "-c", "import transformers"], env=env, capture_output=True, text=True)
    assert bare.returncode != 0 and "No module named 'transformers'" in bare.stderr  # only the wheels bring it
    t_image = time.time()

    # the kernel: its install cell, then src/ written beside it and a tiny QA forward, network blocked
    (work / "install_cell.py").write_text(kernel_install.install_cell_source(wheels.WHEELS_SLUG))
    printed = run([py, "install_cell.py"], cwd=work, env=env).stdout
    assert f"wheels: {len(shipped)} packages installed offline from ../input/{wheels.WHEELS_SLUG}" in printed
    shutil.copytree(REPO_ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (work / "kernel.py").write_text(KERNEL)
    out = run([py, "kernel.py", REPO_ROOT / "input" / "test.csv", tiny_dirs["tiny-bert"]], cwd=work, env=env)
    result = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert len(result["answers"]) == 3 and result["rows"] == 3 and result["windows"] >= 3
    assert all(isinstance(a, str) for a in result["answers"].values())
    for name in ("transformers", "tokenizers", "datasets"):
        assert f"{name}=={result['versions'][name]}" in shipped
        assert result["files"][name].startswith(str(venv))
    assert result["versions"]["torch"] == metadata.version("torch")
    print(f"wheels test: build {t_build - t0:.0f} s, image venv {t_image - t_build:.0f} s, "
          f"kernel {time.time() - t_image:.0f} s")
