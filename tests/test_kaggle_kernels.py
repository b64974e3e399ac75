"""Kaggle kernels: metadata pitfalls caught before sending, the default plan (the winner's 13 models from 12
training kernels with his recipes, settings and data sets, one submit kernel over them), the folds plan (n folds of
one recipe per backbone), self-contained folders, a built submit kernel runs offline in a simulated /kaggle tree,
and the real kaggle CLI pushes to a loopback fake of the Kaggle API."""
import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from research.kaggle_sim.sim import place_wheels
from src.blend.submission import check_submission
from src.common.paths import COMPETITION, REPO_ROOT
from src.kaggle import build as kb
from src.kaggle import cli
from src.kaggle import cli as kk
from src.kaggle import metadata as km
from src.kaggle import plan as kp
from tests.fake_http import KaggleAPIHandler, guard_child_processes, saved, serve_kaggle_api

USER = "tester"
TRAIN_SLUG = "chaii-recipes-03-muril-large-fold0"
SUBMIT_SLUG = "chaii-recipes-05-submit"
SMALL = {"muril-large": 2, "rembert": 2}
RECIPE_DATASETS = [f"{USER}/{name}" for name in ("tydiqa-goldp", "squad2", "mlqa-hindi", "xquad", "nq-subset")]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kernels")
    kb.build(out, USER, SMALL, wheels=False)
    return out


def valid_meta(**changes) -> dict:
    meta = km.kernel_metadata(USER, SUBMIT_SLUG, f"{SUBMIT_SLUG}.ipynb", [], [],
                              json.loads(km.ROOT_METADATA.read_text()))
    meta.update(changes)
    return meta


# ---------------------------------------------------------------- metadata
def test_metadata_pitfalls_are_caught_with_file_and_field():
    km.check_metadata(valid_meta(), "m.json", submit=True)
    cases = [
        (dict(id=None), "field 'id': missing"),
        (dict(id=f"{USER}/Chaii_Submit!"), "slug 'Chaii_Submit!' is invalid"),
        (dict(id=f"{km.USER_PLACEHOLDER}/{SUBMIT_SLUG}"), "placeholder"),
        (dict(enable_internet=True), "field 'enable_internet': true on a submission kernel"),
        (dict(enable_internet=None), "field 'enable_internet': None: write true or false explicitly"),
        (dict(code_file=""), "field 'code_file': missing"),
        (dict(title="another title"), "resolves to slug 'another-title'"),
        (dict(dataset_sources=["dataset/nbroad/rembert"]), "dataset/ prefix"),
        (dict(kernel_sources=["code/tester/k"]), "code/ prefix"),
        (dict(competition_sources=["c/" + COMPETITION]), "slug alone"),
        (dict(machine_shape="NvidiaTeslaK80"),
         "field 'machine_shape': 'NvidiaTeslaK80': expected one of NvidiaTeslaT4, NvidiaTeslaP100"),
        (dict(machine_shape="Tpu1VmV38"), "field 'machine_shape': 'Tpu1VmV38': expected one of"),
        (dict(enable_gpu=False), "field 'machine_shape': 'NvidiaTeslaT4' names a GPU but enable_gpu is false"),
    ]
    for change, message in cases:
        with pytest.raises(km.MetadataError, match=message) as e:
            km.check_metadata(valid_meta(**change), "m.json", submit=True)
        assert str(e.value).startswith("m.json: field")
    meta = valid_meta()
    del meta["enable_internet"]
    with pytest.raises(km.MetadataError, match="explicitly"):
        km.check_metadata(meta, "m.json")
    meta = valid_meta()
    del meta["machine_shape"]  # a GPU kernel must name its machine; without a GPU it need not
    with pytest.raises(km.MetadataError, match="field 'machine_shape': missing: name the GPU, one of NvidiaTeslaT4"):
        km.check_metadata(meta, "m.json")
    km.check_metadata(dict(meta, enable_gpu=False), "m.json")
    assert valid_meta()["machine_shape"] == km.DEFAULT_MACHINE == "NvidiaTeslaT4"
    plans = kp.plan_kernels(USER, SMALL, machine="NvidiaTeslaP100", sized=False)
    assert {p.metadata["machine_shape"] for p in plans} == {"NvidiaTeslaP100"}
    with pytest.raises(kp.PlanError, match=r"--machine 'NvidiaTeslaV100': expected one of NvidiaTeslaT4, "):
        kp.plan_kernels(USER, SMALL, machine="NvidiaTeslaV100")
    with pytest.raises(km.MetadataError, match="'k.ipynb' not found in"):
        km.check_metadata(valid_meta(code_file="k.ipynb"), "m.json", folder=Path("/nonexistent"))


def test_pulled_prefixes_are_stripped_and_a_bad_template_stops_the_build(tmp_path):
    meta = km.strip_source_prefixes({"dataset_sources": ["dataset/nbroad/rembert", "a/b"],
                                     "kernel_sources": ["code/u/k"], "competition_sources": ["c/" + COMPETITION]})
    assert meta == {"dataset_sources": ["nbroad/rembert", "a/b"], "kernel_sources": ["u/k"],
                    "competition_sources": [COMPETITION]}
    km.read_template()  # the committed root kernel-metadata.json is valid
    template = json.loads(km.ROOT_METADATA.read_text())
    for change, message in [(dict(enable_internet=True), "enable_internet"), (dict(code_file=None), "code_file"),
                            (dict(code_file="nope.ipynb"), "'nope.ipynb' not found"), (dict(id=None), "'id'")]:
        path = tmp_path / "kernel-metadata.json"
        (tmp_path / "notebooks").mkdir(exist_ok=True)
        shutil.copy(REPO_ROOT / "notebooks" / "05_submit.ipynb", tmp_path / "notebooks")
        path.write_text(json.dumps({**template, **change}))
        with pytest.raises(km.MetadataError, match=message):
            kb.build(tmp_path / "out", USER, wheels=False, template_path=path)
        assert not (tmp_path / "out" / "kernels.json").exists()


def test_user_name_comes_from_option_env_or_kaggle_json(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "cfg"))
    assert cli.kaggle_user() is None
    assert kk.main(["build", "--out", str(tmp_path / "k"), "--no-wheels"]) == 2
    assert "pass --user NAME (make kernels KAGGLE_USER=you)" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "kaggle.json").write_text(json.dumps({"username": "from-json", "key": "k"}))
    assert cli.kaggle_user() == "from-json"
    monkeypatch.setenv("KAGGLE_USERNAME", "from-env")
    assert cli.kaggle_user() == "from-env" and cli.kaggle_user("explicit") == "explicit"
    with pytest.raises(km.MetadataError, match="user name 'Bad User' is invalid"):
        kb.build(tmp_path / "k", "Bad User", wheels=False)


# ---------------------------------------------------------------- plan
def test_default_plan_is_his_13_models_from_12_kernels_and_one_submit_kernel_voting_over_them():
    """configs/winner_plan.csv: one kernel per run of his (79's step 1000 and final from one), his recipe and
    settings per model, the checkpoint he kept exported, his 13 models averaged per backbone and voted (blend "")."""
    from src.kaggle.winner_kernels import plan_for
    from src.kaggle.winner_plan import by_kernel, kernel_parameters, load_winner_plan
    from src.train.backbones import get_backbone

    plans = plan_for(None, USER)
    train, submit = plans[:-1], plans[-1]
    groups = by_kernel(load_winner_plan())
    assert [p.slug for p in train] == [f"chaii-recipes-03-winner-{k}" for k in groups] and len(train) == 12
    assert all(km.SLUG_RE.match(p.slug) for p in plans)
    fixed = {"backbone", "fold", "n_folds", "recipe"}
    for p, (kernel, models) in zip(train, groups.items(), strict=True):
        assert p.models == models and p.notebook == "03_recipe_training"
        # his settings; fp16 where his fp32 would not fit a T4 kernel (the sizing says so); a batch the T4 holds
        want = {**kernel_parameters(models, fp16=p.size.precision == "fp16"),
                "batch_size": p.size.batch_size, "grad_accum": p.size.grad_accum}
        assert p.parameters == want, kernel
        assert p.size.batch_size * p.size.grad_accum == models[0].batch_size * models[0].grad_accum
        kp.check_train_parameters({k: v for k, v in p.parameters.items() if k not in fixed})
        assert p.recipe == REPO_ROOT / "configs" / f"{models[0].recipe}.yaml"
        assert p.metadata["dataset_sources"][:2] == [
            get_backbone(models[0].backbone).kaggle_dataset.format(user=USER), f"{USER}/{kp.WHEELS_SLUG}"]
        assert p.metadata["competition_sources"] == [COMPETITION]
    by_slug = {p.slug: p for p in train}
    assert by_slug["chaii-recipes-03-winner-79"].parameters["export_steps"] == "1000"
    assert by_slug["chaii-recipes-03-winner-126-s1"].parameters["fold"] == -1
    assert by_slug["chaii-recipes-03-winner-68"].metadata["dataset_sources"] == [
        f"{USER}/xlm-roberta-large", f"{USER}/{kp.WHEELS_SLUG}", f"{USER}/tydi-qa-download", f"{USER}/squad-v1.1",
        "zacchaeus/chaiimlqaxquad", "thedrcat/nqsmall"]
    assert submit.notebook == "05_submit" and submit.parameters["blend"] == ""      # his average + vote
    assert submit.metadata["kernel_sources"] == [f"{USER}/{p.slug}" for p in train]
    dirs = submit.parameters["model_dirs"].split(",")
    assert len(dirs) == 13 and dirs[6:8] == ["../input/chaii-recipes-03-winner-79/rembert/fold2/step1000/model",
                                             "../input/chaii-recipes-03-winner-79/rembert/fold2/model"]
    assert dirs[2] == "../input/chaii-recipes-03-winner-71/muril-large/fold1/step7000/model"
    assert dirs[-1] == "../input/chaii-recipes-03-winner-126-s1/rembert/all/model"
    with pytest.raises(kp.PlanError, match="--counts and --recipe-for shape the folds plan: add --plan folds"):
        plan_for("winner", USER, {"rembert": 2})
    assert [p.parameters["backbone"] for p in plan_for(None, USER, {"rembert": 2}, sized=False)[:-1]] == \
        ["rembert", "rembert"]                                              # counts: the folds plan


def test_the_folds_plan_trains_n_folds_of_one_recipe_per_backbone_and_one_submit_kernel_over_them():
    plans = kp.plan_kernels(USER)
    train, submit = plans[:-1], plans[-1]
    assert [(p.parameters["backbone"], p.parameters["fold"], p.parameters["n_folds"]) for p in train] == \
        [("muril-large", k, 3) for k in range(3)] + [("rembert", k, 5) for k in range(5)] + \
        [("xlm-roberta-large-squad2", k, 5) for k in range(5)]
    weights = {"muril-large": "nbroad/muril-large-cased", "rembert": "nbroad/rembert",
               "xlm-roberta-large-squad2": "nbroad/xlm-roberta-large-squad2"}
    for p in train:
        assert p.notebook == "03_recipe_training" and p.parameters["recipe"] == "recipe_kaggle"
        assert p.metadata["dataset_sources"] == [weights[p.parameters["backbone"]], f"{USER}/{kp.WHEELS_SLUG}",
                                                 *RECIPE_DATASETS]
        assert p.metadata["competition_sources"] == [COMPETITION] and p.metadata["kernel_sources"] == []
    assert submit.notebook == "05_submit" and submit.submit and submit.parameters["blend"] == "oof"
    assert submit.metadata["kernel_sources"] == [f"{USER}/{p.slug}" for p in train]
    assert submit.parameters["model_dirs"].split(",") == [
        f"../input/{p.slug}/{p.parameters['backbone']}/fold{p.parameters['fold']}/model" for p in train]
    assert len(set(submit.parameters["model_dirs"].split(","))) == 13


def test_counts_option_and_its_errors(tmp_path, capsys):
    assert kp.parse_counts("muril-large=2, rembert=4") == {"muril-large": 2, "rembert": 4}
    for bad, message in [("muril-large", r"expected <backbone>\[@<tag>\]=<number"), ("muril-large=1", "at least 2"),
                         ("muril-large=x", "expected"), ("", "no backbone"), ("bert-base=2", "unknown backbone")]:
        with pytest.raises((kp.PlanError, KeyError), match=message):
            kp.parse_counts(bad)
    out = tmp_path / "k"
    assert kk.main(["build", "--user", USER, "--out", str(out), "--no-wheels", "--counts", "rembert=2",
                    "--set", "epochs=1"]) == 0
    order = json.loads((out / "kernels.json").read_text())["order"]
    assert order == ["chaii-recipes-03-rembert-fold0", "chaii-recipes-03-rembert-fold1", SUBMIT_SLUG]
    nb = nbformat.read(out / order[1] / f"{order[1]}.ipynb", as_version=4)
    injected = next(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert all(f in injected for f in ('backbone = "rembert"', "fold = 1", "n_folds = 2", "epochs = 1",
                                       'recipe = "recipe_kaggle"'))
    assert kk.main(["build", "--user", USER, "--out", str(tmp_path / "k2"), "--no-wheels", "--set", "epoch=1"]) == 1
    assert "epoch: not settable" in capsys.readouterr().err and not (tmp_path / "k2").exists()


def test_a_recipe_folder_without_a_kaggle_dataset_stops_the_build(tmp_path):
    import yaml

    recipe = yaml.safe_load((REPO_ROOT / "configs" / "recipe_kaggle.yaml").read_text())
    recipe["stages"][1]["sources"].append({"name": "mystery", "kind": "squad", "path": "mystery-qa/train.json"})
    path = tmp_path / "my_recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(kp.PlanError, match=r"source\(s\) mystery read mystery-qa/, which no Kaggle data set in "
                                           r".*kaggle_datasets.yaml provides"):
        kb.build(tmp_path / "out", USER, SMALL, wheels=False, recipe=str(path))
    assert not (tmp_path / "out").exists()
    mapping = tmp_path / "datasets.yaml"  # a slug whose name is not the folder would mount elsewhere
    mapping.write_text(yaml.safe_dump({"datasets": {**kp.load_dataset_map(), "squad2": "someone/squad-v2"}}))
    with pytest.raises(kp.PlanError, match=r"datasets.squad2: 'someone/squad-v2' would mount at /kaggle/input/"
                                           r"squad-v2/, not at squad2/"):
        kp.plan_kernels(USER, SMALL, datasets_config=mapping)


# ---------------------------------------------------------------- build
def test_build_writes_self_contained_kernel_folders(built):
    order = json.loads((built / "kernels.json").read_text())["order"]
    assert order == [TRAIN_SLUG, "chaii-recipes-03-muril-large-fold1", "chaii-recipes-03-rembert-fold0",
                     "chaii-recipes-03-rembert-fold1", SUBMIT_SLUG]
    train = json.loads((built / TRAIN_SLUG / "kernel-metadata.json").read_text())
    assert train["id"] == f"{USER}/{TRAIN_SLUG}" and train["code_file"] == f"{TRAIN_SLUG}.ipynb"
    assert (train["language"], train["kernel_type"], train["enable_gpu"], train["enable_internet"],
            train["machine_shape"]) == ("python", "notebook", True, False, "NvidiaTeslaT4")
    assert train["dataset_sources"] == ["nbroad/muril-large-cased", f"{USER}/{kp.WHEELS_SLUG}", *RECIPE_DATASETS]
    assert train["competition_sources"] == [COMPETITION]
    submit = json.loads((built / SUBMIT_SLUG / "kernel-metadata.json").read_text())
    assert submit["kernel_sources"] == [f"{USER}/{slug}" for slug in order[:-1]] and submit["enable_internet"] is False
    nb = nbformat.read(built / TRAIN_SLUG / f"{TRAIN_SLUG}.ipynb", as_version=4)
    nbformat.validate(nb)
    written = {c.source.split("\n", 1)[0].split()[1]: c.source.split("\n", 1)[1] for c in nb.cells
               if c.cell_type == "code" and c.source.startswith("%%writefile")}
    # every module verbatim, and the recipe it trains with (load_recipe finds it by name beside src/)
    assert written == kb.kernel_files(kp.RECIPE)
    assert written["configs/recipe_kaggle.yaml"] == (REPO_ROOT / "configs" / "recipe_kaggle.yaml").read_text()
    assert set(written) - {"configs/recipe_kaggle.yaml"} == \
        {f"src/{p.relative_to(REPO_ROOT / 'src').as_posix()}" for p in (REPO_ROOT / "src").rglob("*.py")
         if "__pycache__" not in p.parts}
    assert "src/train/fold.py" in written and "src/kaggle/__main__.py" in written  # every package, to the leaves
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'backbone = "muril-large"' in injected[0].source and "fold = 0" in injected[0].source
    assert 'recipe = "recipe_kaggle"' in injected[0].source and "n_folds = 2" in injected[0].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    sub_nb = nbformat.read(built / SUBMIT_SLUG / f"{SUBMIT_SLUG}.ipynb", as_version=4)
    cells = "\n".join(c.source for c in sub_nb.cells)
    assert "%%writefile src/blend/submission.py" in cells and "%%writefile configs/" not in cells
    assert f'model_dirs = "../input/{TRAIN_SLUG}/muril-large/fold0/model,' in cells and 'blend = "oof"' in cells


def inlined_files(notebook: Path) -> dict[str, str]:
    """The files a built kernel writes beside its notebook (its %%writefile cells): path -> text."""
    nb = nbformat.read(notebook, as_version=4)
    return {c.source.split("\n", 1)[0].split()[1]: c.source.split("\n", 1)[1] for c in nb.cells
            if c.cell_type == "code" and c.source.startswith("%%writefile")}


def test_a_family_trains_its_backbone_with_its_own_recipe_and_votes_as_its_own_backbone(tmp_path, capsys):
    import yaml

    recipe = yaml.safe_load((REPO_ROOT / "configs" / "recipe_kaggle.yaml").read_text())
    for stage in recipe["stages"]:  # chaii (the competition) and Hindi MLQA only: one data set to attach
        stage["sources"] = [s for s in stage["sources"] if s["kind"] in ("chaii", "mlqa")]
    short = tmp_path / "recipe_short.yaml"
    short.write_text(yaml.safe_dump(recipe))
    counts, recipes = {"muril-large": 2, "muril-large@short": 2}, {"muril-large@short": str(short)}
    assert kp.parse_counts("muril-large=2,muril-large@short=2") == counts
    assert kp.parse_recipes([f"muril-large@short = {short}"]) == recipes

    plans = kp.plan_kernels(USER, counts, recipes=recipes)
    train, submit = plans[:-1], plans[-1]
    family_slugs = ["chaii-recipes-03-muril-large-short-fold0", "chaii-recipes-03-muril-large-short-fold1"]
    assert [p.slug for p in train] == [TRAIN_SLUG, "chaii-recipes-03-muril-large-fold1", *family_slugs]
    assert all(km.SLUG_RE.match(p.slug) for p in plans)
    assert [(p.parameters["backbone"], p.parameters["fold"], p.parameters["recipe"]) for p in train] == [
        ("muril-large", 0, "recipe_kaggle"), ("muril-large", 1, "recipe_kaggle"),
        ("muril-large@short", 0, "recipe_short"), ("muril-large@short", 1, "recipe_short")]
    wheels = f"{USER}/{kp.WHEELS_SLUG}"
    assert [p.metadata["dataset_sources"] for p in train] == \
        2 * [["nbroad/muril-large-cased", wheels, *RECIPE_DATASETS]] + \
        2 * [["nbroad/muril-large-cased", wheels, f"{USER}/mlqa-hindi"]]
    # sized as muril-large (its shape and batch), over its own, smaller recipe
    assert train[2].size.backbone == "muril-large@short" and train[2].size.batch_size == train[0].size.batch_size
    assert 0 < train[2].size.flops < train[0].size.flops / 3
    model_dirs = ["../input/chaii-recipes-03-muril-large-fold0/muril-large/fold0/model",
                  "../input/chaii-recipes-03-muril-large-fold1/muril-large/fold1/model",
                  "../input/chaii-recipes-03-muril-large-short-fold0/muril-large@short/fold0/model",
                  "../input/chaii-recipes-03-muril-large-short-fold1/muril-large@short/fold1/model"]
    assert submit.parameters["model_dirs"].split(",") == model_dirs

    with pytest.raises(kp.PlanError, match=r"--recipe-for rembert@short: not in the counts \(muril-large, "):
        kp.plan_kernels(USER, counts, recipes={"rembert@short": str(short)}, sized=False)
    with pytest.raises(kp.PlanError, match=r"recipe not found: recipe_nope"):
        kp.plan_kernels(USER, counts, recipes={"muril-large@short": "recipe_nope"}, sized=False)
    with pytest.raises(kp.PlanError, match=r"same kernel slug: chaii-recipes-03-muril-large-a-b-fold0 "
                                           r"\(muril-large@a-b and muril-large@a_b\)"):
        kp.plan_kernels(USER, {"muril-large@a_b": 2, "muril-large@a-b": 2}, sized=False)
    # Kaggle caps a slug at 50 characters: 'chaii-recipes-03-' and '-fold1' leave a family name 27
    long_tag = "muril-large@" + "t" * 16                                  # 28 characters: one too many
    with pytest.raises(kp.PlanError, match=rf"chaii-recipes-03-muril-large-{'t' * 16}-fold1 \(51 characters, "
                                           rf"from '{long_tag}': 1 too many\)"):
        kp.plan_kernels(USER, {long_tag: 2}, sized=False)
    assert len(kp.plan_kernels(USER, {long_tag[:-1]: 2}, sized=False)[1].slug) == km.SLUG_MAX
    with pytest.raises(kp.PlanError, match="expected <backbone>"):
        kp.parse_recipes(["muril-large@short"])
    with pytest.raises(ValueError, match="family tag 'Short' is malformed"):
        kp.parse_counts("muril-large@Short=2")

    out = tmp_path / "k"
    assert kk.main(["build", "--user", USER, "--out", str(out), "--no-wheels", "--counts",
                    "muril-large=2,muril-large@short=2", "--recipe-for", f"muril-large@short={short}"]) == 0
    assert json.loads((out / "kernels.json").read_text())["order"] == [p.slug for p in plans]
    plain = inlined_files(out / TRAIN_SLUG / f"{TRAIN_SLUG}.ipynb")
    assert plain == kb.kernel_files(kp.RECIPE) and "configs/recipe_short.yaml" not in plain
    for slug in family_slugs:
        written = inlined_files(out / slug / f"{slug}.ipynb")
        assert written["configs/recipe_short.yaml"] == short.read_text()
        assert "configs/recipe_kaggle.yaml" not in written
        assert json.loads((out / slug / "kernel-metadata.json").read_text())["dataset_sources"] == \
            train[2].metadata["dataset_sources"]
    submit_meta = json.loads((out / SUBMIT_SLUG / "kernel-metadata.json").read_text())
    assert submit_meta["kernel_sources"] == [f"{USER}/{p.slug}" for p in train]
    cells = "\n".join(c.source for c in nbformat.read(out / SUBMIT_SLUG / f"{SUBMIT_SLUG}.ipynb", as_version=4).cells)
    assert f'model_dirs = "{",".join(model_dirs)}"' in cells
    assert kk.main(["plan", "--user", USER, "--counts", "muril-large=2", "--recipe-for", f"rembert={short}"]) == 1
    assert "--recipe-for rembert: not in the counts" in capsys.readouterr().err


# ---------------------------------------------------------------- offline run in a simulated /kaggle tree
@pytest.fixture
def sitecustomize(tmp_path, monkeypatch) -> Path:
    """Python processes started by the test (kernel, kaggle CLI) load this: network guard, fake-API endpoint."""
    return guard_child_processes(tmp_path, monkeypatch)


def test_built_submit_kernel_runs_offline_in_a_simulated_kaggle_tree(tmp_path, tiny_dirs, monkeypatch, sitecustomize):
    import papermill as pm

    from src.data.load import load_chaii_csv
    from src.train.fold import TrainConfig, train_fold

    built = tmp_path / "kernels"
    kb.build(built, USER, {"muril-large": 2}, wheels=False)
    root = tmp_path / "sim"
    kin, work = root / "kaggle" / "input", root / "kaggle" / "working"
    work.mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "input", kin / COMPETITION)
    # a short competition train.csv (the 30 shortest contexts) keeps the two folds' training to seconds
    train = load_chaii_csv(REPO_ROOT / "input" / "train.csv")
    train = train.loc[train["context"].str.len().sort_values(kind="stable").index[:30]].reset_index(drop=True)
    train.to_csv(kin / COMPETITION / "train.csv", index=False)
    # the training kernels' outputs, as Kaggle mounts them: tiny-bert standing in for muril-large
    for k in range(2):
        train_fold(train, TrainConfig(
            backbone="muril-large", model_path=str(tiny_dirs["tiny-bert"]), fold=k, n_folds=2, epochs=1,
            batch_size=16, grad_accum=1, max_length=128, doc_stride=48, save_steps=10_000,
            output_dir=str(kin / kp.training_slug("muril-large", k) / "muril-large" / f"fold{k}")))
    wheels = kin / kp.WHEELS_SLUG
    wheels.mkdir()
    place_wheels(kin, kp.WHEELS_SLUG)  # requirements and image pins, all satisfied here

    nb = nbformat.read(built / SUBMIT_SLUG / f"{SUBMIT_SLUG}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import src, os\nprint('SRC', src.__file__)\n"
                                              "print('HF', os.environ['HF_HUB_OFFLINE'])"))
    probe = tmp_path / "kernel.ipynb"
    nbformat.write(nb, probe)
    monkeypatch.setenv("CHAII_KAGGLE_ROOT", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CHAII_NO_NETWORK", "1")
    out = pm.execute_notebook(str(probe), str(tmp_path / "executed.ipynb"), cwd=str(work), kernel_name="python3",
                              progress_bar=False)
    printed = "".join(o.get("text", "") for c in out.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert f"SRC {work / 'src' / '__init__.py'}" in printed  # the inlined package, not the repo's
    test = pd.read_csv(kin / COMPETITION / "test.csv", dtype=str, keep_default_na=False)
    sub = pd.read_csv(work / "submission.csv", dtype=str, keep_default_na=False)
    check_submission(sub, test["id"])
    assert (work / "src" / "train" / "fold.py").read_text() == (REPO_ROOT / "src" / "train" / "fold.py").read_text()


def test_network_guard_blocks_outside_connections(sitecustomize):
    import os
    import subprocess
    import sys

    env = dict(os.environ, CHAII_NO_NETWORK="1")
    out = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('93.184.216.34', 80), 5)"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "network blocked in this test" in out.stderr


# ---------------------------------------------------------------- push against a loopback fake Kaggle API
class FakeKaggle(KaggleAPIHandler):
    """The three Kaggle API calls the CLI makes here; records every request."""
    refuse: str = "rembert"  # SaveKernel answers an API error for slugs containing this

    def answer(self, method, body):
        if method == "IntrospectToken":
            return {"active": body.get("token") == "tok-123", "username": USER}
        if method == "SaveKernel":
            return ({"error": f"Dataset not found: nbroad/{self.refuse}"} if self.refuse in body["slug"].split("/")[-1]
                    else saved(body["slug"]))
        if method == "GetKernelSessionStatus":
            return {"status": "ERROR" if self.refuse in body["kernelSlug"] else "COMPLETE"}
        return None


@pytest.fixture
def fake_kaggle(monkeypatch, tmp_path, sitecustomize):
    FakeKaggle.received = []
    with serve_kaggle_api(FakeKaggle, tmp_path, monkeypatch) as api:
        yield api


def test_push_without_credentials_sends_nothing(built, fake_kaggle, capsys):
    assert kk.main(["push", "--out", str(built)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "KAGGLE_API_TOKEN" in err and "nothing was pushed" in err
    assert fake_kaggle.received == []


def test_push_with_bad_metadata_sends_nothing(built, fake_kaggle, tmp_path, capsys, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    meta_path = copy / SUBMIT_SLUG / "kernel-metadata.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "enable_internet": True}))
    monkeypatch.setenv("KAGGLE_API_TOKEN", "tok-123")
    assert kk.main(["push", "--out", str(copy)]) == 1
    assert "enable_internet" in capsys.readouterr().err
    assert fake_kaggle.received == []


def test_real_cli_pushes_to_the_loopback_api(built, fake_kaggle, monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "tok-123")
    assert kk.main(["push", "--out", str(built)]) == 1  # the rembert kernels are refused by the API
    out = capsys.readouterr()
    assert "tester/chaii-recipes-03-rembert-fold0: push FAILED" in out.err
    assert "Dataset not found: nbroad/rembert" in out.err
    # the submit kernel reads every training kernel's output: with one refused it is not sent
    assert f"{USER}/{SUBMIT_SLUG}: not pushed, its inputs failed: {USER}/chaii-recipes-03-rembert-fold0" in out.err
    got = fake_kaggle.received
    assert got[0]["method"] == "IntrospectToken" and got[0]["body"]["token"] == "tok-123"
    assert all(r["path"].startswith("/api/v1/") for r in got)
    saves = [r for r in got if r["method"] == "SaveKernel"]
    assert [s["body"]["slug"] for s in saves] == [f"{USER}/{slug}" for slug in json.loads(
        (built / "kernels.json").read_text())["order"][:-1]]
    assert all(s["auth"] == "Bearer tok-123" for s in saves)
    first = saves[0]["body"]
    assert (first["language"], first["kernelType"], first["isPrivate"], first["enableGpu"],
            first["enableInternet"]) == ("python", "notebook", True, True, False)
    # the machine reaches the API (`--accelerator`, and the metadata's machine_shape)
    assert {s["body"]["machineShape"] for s in saves} == {"NvidiaTeslaT4"}
    assert first["datasetDataSources"] == ["nbroad/muril-large-cased", f"{USER}/{kp.WHEELS_SLUG}", *RECIPE_DATASETS]
    assert first["competitionDataSources"] == [COMPETITION] and not first.get("kernelDataSources")
    source = json.loads(first["text"])
    cells = "\n".join(c["source"] for c in source["cells"])
    assert "%%writefile src/train/fold.py" in cells and "def train_fold(" in cells
    assert "%%writefile configs/recipe_kaggle.yaml" in cells and 'recipe = "recipe_kaggle"' in cells

    # status polls the same API through the CLI; a failed kernel makes the exit non-zero
    assert kk.main(["status", "--out", str(built)]) == 1
    printed = capsys.readouterr().out
    assert f"{USER}/{TRAIN_SLUG}: complete" in printed and f"{USER}/chaii-recipes-03-rembert-fold0: error" in printed


def test_the_module_cli_runs_as_make_kernels_calls_it():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "src.kaggle", "build", "--help"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--counts" in out.stdout, out.stderr[-2000:]


def test_push_names_the_machine_with_accelerator(built, monkeypatch, tmp_path):
    """`kaggle kernels push --accelerator <machine_shape>`: the CLI lets the flag override the metadata."""
    import subprocess

    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    for folder in copy.iterdir():  # a P100 build (the metadata and the flag must agree)
        if (folder / "kernel-metadata.json").exists():
            meta = json.loads((folder / "kernel-metadata.json").read_text())
            (folder / "kernel-metadata.json").write_text(json.dumps({**meta, "machine_shape": "NvidiaTeslaP100"}))
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "Kernel version 1 successfully pushed.", "")

    monkeypatch.setenv("KAGGLE_API_TOKEN", "tok")
    monkeypatch.setattr(kk.subprocess, "run", fake_run)
    assert kk.main(["push", "--out", str(copy)]) == 0
    order = json.loads((copy / "kernels.json").read_text())["order"]
    assert [c[1:] for c in calls] == [["kernels", "push", "-p", str(copy / slug), "--accelerator", "NvidiaTeslaP100"]
                                      for slug in order]
