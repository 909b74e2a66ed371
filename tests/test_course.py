"""Course workflows written the way the book writes them (chapters 1, 2, 5 and 6).

Each test is a short course notebook section with only the import line and the data source
changed: built-in datasets in the course's layouts, tiny sizes (a few dozen images, 32 px, one
epoch) and ``pretrained=False`` for ResNets, whose weights are not available offline. The
assertions are what a user of the notebook sees: shapes, vocabularies, the types that
``predict`` returns, the metrics in ``learn.recorder.values``.
"""
from __future__ import annotations

import pytest

from fastlearn.vision.all import *  # noqa: F401,F403  (the course's import lines)
from fastlearn.tabular.all import *  # noqa: F401,F403
from fastlearn.collab.all import *  # noqa: F401,F403
from fastlearn.datasets import (builtin_path, credit_data, fashion_keypoints, fashion_mnist,
                                fashion_multilabel, movielens_100k)

# --- chapter 1: pets with a name function -------------------------------------------------

def test_ch1_pets_from_name_func(pets_path):
    path = pets_path

    def is_cat(x): return x[0].isupper()
    dls = ImageDataLoaders.from_name_func(
        path, get_image_files(path/"images"), valid_pct=0.2, seed=42,
        label_func=is_cat, item_tfms=Resize(32), bs=8)
    assert list(dls.vocab) == [False, True]
    learn = vision_learner(dls, "efficientnet_lite0", metrics=error_rate)
    learn.fine_tune(1)
    assert len(learn.recorder.values[-1]) == 3        # train_loss, valid_loss, error_rate
    img = PILImage.create(get_image_files(path/"images")[0])
    assert max(img.to_thumb(16).size) <= 16
    is_cat_pred, idx, probs = learn.predict(img)
    assert is_cat_pred in (True, False)
    assert probs.shape == (2,) and float(probs.sum()) == pytest.approx(1, abs=1e-4)
    assert int(idx) == list(dls.vocab).index(is_cat_pred)


# --- chapter 1: segmentation ---------------------------------------------------------------

def test_ch1_camvid_segmentation():
    path = builtin_path(URLs.CAMVID_TINY)         # was: untar_data(URLs.CAMVID_TINY)
    codes = np.loadtxt(path/"codes.txt", dtype=str)
    dls = SegmentationDataLoaders.from_label_func(
        path, bs=8, fnames=get_image_files(path/"images"),
        label_func=lambda o: path/"labels"/f"{o.stem}_P{o.suffix}",
        codes=codes, item_tfms=Resize(32))
    xb, yb = dls.one_batch()
    assert xb.shape == (8, 3, 32, 32) and yb.shape == (8, 32, 32)
    learn = unet_learner(dls, resnet18, pretrained=False)
    learn.fine_tune(1)
    assert len(learn.recorder.values) == 1
    assert list(dls.vocab) == list(codes)
    learn.show_results(max_n=2, figsize=(7, 8))


# --- chapter 1: tabular --------------------------------------------------------------------

def test_ch1_tabular_from_csv(builtin_data_path):
    path = credit_data(data=builtin_data_path)
    dls = TabularDataLoaders.from_csv(
        path/"credit_data.csv", path=path, y_names="Status",
        cat_names=["Home", "Marital", "Records", "Job"],
        cont_names=["Seniority", "Age", "Income", "Amount"],
        procs=[Categorify, FillMissing, Normalize], bs=256)
    learn = tabular_learner(dls, metrics=accuracy)
    learn.fit_one_cycle(1)
    assert len(learn.recorder.values[-1]) == 3
    assert 0 <= learn.recorder.values[-1][2] <= 1


def test_ch1_tabular_from_df(builtin_data_path):
    df = pd.read_csv(credit_data(data=builtin_data_path)/"credit_data.csv")
    dls = TabularDataLoaders.from_df(
        df, y_names="Status", cat_names=["Home", "Job"], cont_names=["Age", "Income"],
        procs=[Categorify, FillMissing, Normalize], bs=256)
    assert set(dls.vocab) == {"bad", "good"}
    assert "Income_na" in dls.cat_names
    learn = tabular_learner(dls, layers=[20, 10], metrics=accuracy)
    learn.fit_one_cycle(1, 1e-2)
    row, clas, probs = learn.predict(df.iloc[0])
    assert probs.shape == (2,) and int(clas) in (0, 1)
    learn.show_results()


# --- chapter 1 / 8: collaborative filtering ------------------------------------------------

def test_ch8_collab_from_df(builtin_data_path):
    path = movielens_100k(data=builtin_data_path)
    ratings = pd.read_csv(path/"u.data", delimiter="\t", header=None,
                          names=["user", "movie", "rating", "timestamp"]).iloc[:5000]
    movies = pd.read_csv(path/"u.item", delimiter="|", encoding="latin-1",
                         usecols=(0, 1), names=("movie", "title"), header=None)
    ratings = ratings.merge(movies)
    dls = CollabDataLoaders.from_df(ratings, item_name="title", bs=64)
    learn = collab_learner(dls, n_factors=50, y_range=(0, 5.5))
    learn.fit_one_cycle(1, 5e-3, wd=0.1)
    movie_bias = learn.model.i_bias.weight.squeeze()
    assert movie_bias.shape == (len(dls.classes["title"]),)
    idxs = movie_bias.argsort()[:5]
    titles = [dls.classes["title"][i] for i in idxs]
    assert all(isinstance(t, str) for t in titles)


def test_ch1_collab_from_csv(builtin_data_path, tmp_path):
    source = movielens_100k(data=builtin_data_path)
    pd.read_csv(source/"ratings.csv").iloc[:3000].to_csv(tmp_path/"ratings.csv", index=False)
    path = Path(tmp_path)
    dls = CollabDataLoaders.from_csv(path/"ratings.csv")
    dls.show_batch()
    learn = collab_learner(dls, y_range=(0.5, 5.5))
    learn.fine_tune(1)
    assert len(learn.recorder.values[-1]) == 2       # train_loss, valid_loss
    learn.show_results()
    preds, targs = learn.get_preds()
    assert float(preds.min()) >= 0.5 and float(preds.max()) <= 5.5


# --- chapter 2: bears ----------------------------------------------------------------------

def test_ch2_bears_datablock(bears_path, tmp_path):
    path = bears_path
    bears = DataBlock(
        blocks=(ImageBlock, CategoryBlock), get_items=get_image_files,
        splitter=RandomSplitter(valid_pct=0.2, seed=42),
        get_y=parent_label, item_tfms=Resize(32))
    dls = bears.dataloaders(path, bs=16)
    assert list(dls.vocab) == sorted(p.name for p in path.ls())
    dls.valid.show_batch(max_n=4, nrows=1)
    bears = bears.new(item_tfms=Resize(32, ResizeMethod.Squish))
    bears = bears.new(item_tfms=Resize(32, ResizeMethod.Pad, pad_mode="zeros"))
    bears = bears.new(item_tfms=RandomResizedCrop(32, min_scale=0.3))
    dls = bears.dataloaders(path, bs=16)
    dls.train.show_batch(max_n=4, nrows=1, unique=True)
    bears = bears.new(item_tfms=Resize(32), batch_tfms=aug_transforms(mult=2))
    dls = bears.dataloaders(path, bs=16)
    dls.train.show_batch(max_n=4, nrows=1, unique=True)
    xb, yb = dls.one_batch()
    assert xb.shape == (16, 3, 32, 32) and yb.shape == (16,)

    learn = vision_learner(dls, resnet18, metrics=error_rate, pretrained=False, path=tmp_path)
    learn.fine_tune(1)
    assert len(learn.recorder.values[-1]) == 3
    interp = ClassificationInterpretation.from_learner(learn)
    interp.plot_confusion_matrix()
    interp.plot_top_losses(2, nrows=1)

    learn.export()
    assert (tmp_path/"export.pkl").exists()
    assert Path(tmp_path).ls(file_exts=".pkl") == [tmp_path/"export.pkl"]
    learn_inf = load_learner(tmp_path/"export.pkl")
    pred, idx, probs = learn_inf.predict(str(get_image_files(path)[0]))
    assert pred in learn_inf.dls.vocab
    assert probs.shape == (len(learn_inf.dls.vocab),)
    assert list(learn_inf.dls.vocab) == list(dls.vocab)


# --- chapter 5: pet breeds -----------------------------------------------------------------

def test_ch5_pet_breeds(pets_path):
    path = pets_path
    fname = (path/"images").ls()[0]
    assert re.findall(r"^(.+)_\d+.png$", fname.name)
    pets = DataBlock(blocks=(ImageBlock, CategoryBlock),
                     get_items=get_image_files,
                     splitter=RandomSplitter(seed=42),
                     get_y=using_attr(RegexLabeller(r"(.+)_\d+.png$"), "name"),
                     item_tfms=Resize(40),
                     batch_tfms=aug_transforms(size=32, min_scale=0.75))
    dls = pets.dataloaders(path/"images", bs=8)
    assert list(dls.vocab) == sorted(["Bag", "Coat", "sandal", "sneaker"])
    dls.show_batch(nrows=1, ncols=3)
    pets.summary(path/"images")

    learn = vision_learner(dls, resnet18, metrics=error_rate, pretrained=False)
    x, y = dls.one_batch()
    preds, _ = learn.get_preds(dl=[(x, y)])
    assert preds.shape == (8, 4)
    assert float(preds[0].sum()) == pytest.approx(1, abs=1e-4)

    lr_min, lr_steep = learn.lr_find(suggest_funcs=(minimum, steep))
    assert isinstance(lr_min, float) and isinstance(lr_steep, float)
    learn.fit_one_cycle(1, 3e-3)
    learn.unfreeze()
    learn.fit_one_cycle(1, lr_max=slice(1e-6, 1e-4))
    assert len(learn.recorder.values) == 1      # each fit starts a new record, as in the course
    assert len(learn.opt.param_groups) > 1 and learn.opt.param_groups[0]["lr"] < learn.opt.param_groups[-1]["lr"]
    learn.recorder.plot_loss()
    suggestion = learn.lr_find()
    assert isinstance(suggestion.valley, float)

    interp = ClassificationInterpretation.from_learner(learn)
    confused = interp.most_confused(min_val=1)
    assert all(len(c) == 3 and c[2] >= 1 for c in confused)


def test_ch5_regex_labeller_on_path(pets_path):
    labeller = RegexLabeller(pat=r"/([^/]+)_\d+.png$")
    fname = (pets_path/"images"/"Bag_0.png")
    assert labeller(fname) == "Bag"
    assert using_attr(RegexLabeller(pat=r"^(.+)_\d+.png$"), "name")(fname) == "Bag"


# --- chapter 6: multi-label ----------------------------------------------------------------

def test_ch6_multilabel(builtin_data_path):
    path = fashion_multilabel(n_train=32, n_valid=16, size=64, data=builtin_data_path)
    df = pd.read_csv(path/"train.csv")

    dblock = DataBlock()
    dsets = dblock.datasets(df)
    assert len(dsets.train) + len(dsets.valid) == len(df)
    x, y = dsets.train[0]
    assert x["fname"] == y["fname"]

    dblock = DataBlock(get_x=lambda r: r["fname"], get_y=lambda r: r["labels"])
    dsets = dblock.datasets(df)
    assert isinstance(dsets.train[0][0], str)

    def get_x(r): return path/"train"/r["fname"]
    def get_y(r): return r["labels"].split(" ")
    dblock = DataBlock(get_x=get_x, get_y=get_y)
    dsets = dblock.datasets(df)
    assert isinstance(dsets.train[0][1], list)

    dblock = DataBlock(blocks=(ImageBlock, MultiCategoryBlock), get_x=get_x, get_y=get_y)
    dsets = dblock.datasets(df)
    img, target = dsets.train[0]
    assert target.shape == (len(dsets.train.vocab),)
    idxs = torch.where(dsets.train[0][1] == 1.)[0]
    assert len(dsets.train.vocab[idxs]) == int(target.sum())

    def splitter(df):
        train = df.index[~df["is_valid"]].tolist()
        valid = df.index[df["is_valid"]].tolist()
        return train, valid

    dblock = DataBlock(blocks=(ImageBlock, MultiCategoryBlock),
                       splitter=splitter, get_x=get_x, get_y=get_y,
                       item_tfms=RandomResizedCrop(32, min_scale=0.35))
    dsets = dblock.datasets(df)
    assert len(dsets.train) == 32 and len(dsets.valid) == 16
    dls = dblock.dataloaders(df, bs=8)
    dls.show_batch(nrows=1, ncols=3)

    learn = vision_learner(dls, resnet18, pretrained=False)
    x, y = to_cpu(dls.train.one_batch())
    activs = learn.model(x)
    assert activs.shape == (8, len(dls.vocab))
    loss_func = nn.BCEWithLogitsLoss()
    assert loss_func(activs, y).ndim == 0

    learn = vision_learner(dls, resnet18, metrics=partial(accuracy_multi, thresh=0.2),
                           pretrained=False)
    assert "BCEWithLogits" in type(learn.loss_func).__name__
    learn.fine_tune(1, base_lr=3e-3, freeze_epochs=1)
    assert len(learn.recorder.values[-1]) == 3
    learn.metrics = partial(accuracy_multi, thresh=0.1)
    loss, acc = learn.validate()
    assert 0 <= acc <= 1
    preds, targs = learn.get_preds()
    acc = accuracy_multi(preds, targs, thresh=0.9, sigmoid=False)
    assert 0 <= float(acc) <= 1
    xs = torch.linspace(0.05, 0.95, 29)
    accs = [accuracy_multi(preds, targs, thresh=i, sigmoid=False) for i in xs]
    assert len(accs) == 29
    labels, mask, probs = learn.predict(get_x(df.iloc[0]))
    assert all(label in dls.vocab for label in labels)
    assert mask.dtype == torch.bool and mask.shape == probs.shape == (len(dls.vocab),)
    assert list(labels) == [v for v, m in zip(dls.vocab, mask) if m]

    learn = vision_learner(dls, resnet18, metrics=accuracy_multi, pretrained=False)
    learn.fit_one_cycle(1)
    assert len(learn.recorder.values[-1]) == 3


def test_ch6_multilabel_colreader(builtin_data_path):
    path = fashion_multilabel(n_train=32, n_valid=16, size=64, data=builtin_data_path)
    df = pd.read_csv(path/"train.csv")
    dblock = DataBlock(blocks=(ImageBlock, MultiCategoryBlock),
                       get_x=ColReader("fname", pref=str(path/"train") + os.path.sep),
                       get_y=ColReader("labels", label_delim=" "),
                       splitter=ColSplitter("is_valid"), item_tfms=Resize(32))
    dls = dblock.dataloaders(df, bs=8)
    xb, yb = dls.one_batch()
    assert xb.shape == (8, 3, 32, 32) and yb.shape == (8, len(dls.vocab))


# --- chapter 6: key points -----------------------------------------------------------------

def test_ch6_keypoints(builtin_data_path):
    path = fashion_keypoints(n_train=32, n_valid=16, size=64, data=builtin_data_path)
    points = pd.read_csv(path/"points.csv").set_index("fname")
    img_files = get_image_files(path)
    assert len(img_files) == 48

    def get_ctr(f):
        row = points.loc[f.name]
        return tensor([row["x"], row["y"]])

    assert get_ctr(img_files[0]).shape == (2,)
    biwi = DataBlock(
        blocks=(ImageBlock, PointBlock),
        get_items=get_image_files,
        get_y=get_ctr,
        splitter=FuncSplitter(lambda o: bool(points.loc[o.name, "is_valid"])),
        batch_tfms=aug_transforms(size=(32, 32)) + [Normalize.from_stats(*imagenet_stats)])
    dls = biwi.dataloaders(path, bs=8)
    dls.show_batch(max_n=4, figsize=(8, 6))
    xb, yb = dls.one_batch()
    assert xb.shape == (8, 3, 32, 32) and yb.shape == (8, 1, 2)
    assert float(yb.abs().max()) <= 1.5        # points scaled to [-1, 1]
    learn = vision_learner(dls, resnet18, y_range=(-1, 1), pretrained=False)
    assert "MSE" in type(dls.loss_func).__name__
    learn.fine_tune(1, 1e-2)
    assert len(learn.recorder.values) == 1
    preds, _ = learn.get_preds()
    assert preds.shape == (16, 1, 2) or preds.shape == (16, 2)
    assert float(preds.abs().max()) <= 1
    learn.show_results(ds_idx=1, nrows=1, figsize=(6, 8))
    point, _, raw = learn.predict(img_files[0])
    assert point.shape[-1] == 2


def test_ch6_keypoints_predict_in_pixels(builtin_data_path):
    path = fashion_keypoints(n_train=32, n_valid=16, size=64, data=builtin_data_path)
    points = pd.read_csv(path/"points.csv").set_index("fname")

    def get_ctr(f):
        row = points.loc[f.name]
        return tensor([row["x"], row["y"]])

    biwi = DataBlock(blocks=(ImageBlock, PointBlock), get_items=get_image_files, get_y=get_ctr,
                     splitter=FuncSplitter(lambda o: bool(points.loc[o.name, "is_valid"])),
                     item_tfms=Resize(32))
    dls = biwi.dataloaders(path, bs=8)
    learn = vision_learner(dls, resnet18, y_range=(-1, 1), pretrained=False)
    point, _, raw = learn.predict(get_image_files(path)[0])
    assert torch.allclose(point.reshape(-1), (raw.reshape(-1) + 1) * 32 / 2, atol=1e-4)
