"""`deltagrad train` checks every option before any data is read or any run starts: a bad one is
exit 2 with one line, no traceback, nothing read, trained or written."""

import pytest
from click.testing import CliRunner

from deltagrad.cli import main
from deltagrad.nn import config as C
from deltagrad.nn.config import ConfigError, TrainConfig, check_config, check_memory, make_config, parse_hidden

REFUSED = [
    (["--lr", "-0.01"], "--lr must be a finite number above 0"),
    (["--lr", "nan"], "--lr must be a finite number above 0"),
    (["--lr", "inf"], "--lr must be a finite number above 0"),
    (["--lr", "0"], "--lr must be a finite number above 0"),
    (["--lr", "abc"], "'abc' is not a valid float"),
    (["--momentum", "-1"], "--momentum must be a number in [0, 1)"),
    (["--momentum", "1"], "--momentum must be a number in [0, 1)"),
    (["--optimizer", "adam", "--momentum", "0.9"], "--momentum applies to --optimizer sgd or momentum"),
    (["--hidden", "-5"], "--hidden '-5': widths must be positive integers"),
    (["--hidden", "300,-100"], "widths must be positive integers"),
    (["--hidden", "0"], "widths must be positive integers"),
    (["--hidden", "300,,100"], "give widths such as 300"),
    (["--hidden", "100000000"], "needs about"),
    (["--limit", "5"], "--limit 5 is too small"),
    (["--epochs", "0"], "--epochs must be an integer of at least 1"),
    (["--batch-size", "0"], "--batch-size must be an integer of at least 1"),
    (["--seed", "-1"], "--seed must be an integer of at least 0"),
    (["--seeds", "0"], "--seeds must be an integer of at least 1"),
    (["--activation", "gelu"], "'gelu' is not available: choose one of sigmoid, relu, tanh"),
    (["--optimizer", "lbfgs"], "choose one of sgd, momentum, adam, rmsprop"),
    (["--init", "lecun"], "choose one of glorot, glorot_normal, he, torch, normal, zeros"),
    (["--device", "tpu"], "choose one of cpu, cuda, array-api-strict"),
    (["--loss", "max"], "choose one of mean, sum"),
    (["--pixels", "bytes"], "choose one of unit, raw"),
    (["--dtype", "float16"], "choose one of float32, float64"),
    (["--preset", "torch"], "--preset 'torch' is unknown: choose one of vugrad"),
    (["--compare", "activation=relu,gelu"], "--compare activation=relu,gelu: 'gelu' is not available: choose one of "
                                            "sigmoid, relu, tanh"),
    (["--compare", "lr=0.1,-1"], "--compare lr=0.1,-1: must be a finite number above 0"),
    (["--compare", "momentum=0,1.5"], "must be a number in [0, 1)"),
    (["--lr-decay", "0"], "--lr-decay must be a number in (0, 1]"),
    (["--compare", "lr_decay=1,1.5"], "must be a number in (0, 1]"),
    (["--shift", "-1"], "--shift must be an integer of at least 0"),
    (["--compare", "shift=0,9"], "must be at most 4 pixels"),
    (["--compare", "hidden=100,300-0"], "widths must be positive integers"),
    (["--compare", "hidden=100,100"], "'100' is given twice"),
    (["--compare", "residual=maybe"], "'maybe' is not true or false"),
    (["--compare", "colour=red"], "give KEY=V1,V2,... with KEY one of"),
    (["--compare", "lr="], "give one or more values"),
    (["--compare", "lr=0.1", "--compare", "lr=0.2"], "--compare lr is given twice"),
    (["--compare", "optimizer=sgd,adam", "--momentum", "0.9"], "run optimizer=adam: --momentum applies"),
    (["--compare", "hidden=10,100000000"], "run hidden=100000000: a 784-100000000-10 network needs about"),
    (["--hiden", "3"], "No such option '--hiden'"),
]


@pytest.fixture
def no_data(monkeypatch):
    """Reading any data fails the test: refusals come first."""
    def forbidden(*a, **k):
        raise AssertionError("data was read")

    import deltagrad.nn.data as D
    import deltagrad.nn.train as T

    for mod, name in ((D, "load_mnist"), (D, "load_synthetic"), (T, "load_data")):
        monkeypatch.setattr(mod, name, forbidden)


@pytest.mark.parametrize("args,message", REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_bad_options_are_refused_up_front(args, message, tmp_path, no_data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", *args, "--out", str(out), "--quiet"])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert r.output.startswith("error: ") and r.output.strip().count("\n") == 0, r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing trained, nothing written


def test_resume_takes_only_epochs_data_dir_and_quiet(tmp_path, no_data):
    r = CliRunner().invoke(main, ["train", "--resume", str(tmp_path), "--lr", "0.1", "--out", "x"])
    assert r.exit_code == 2 and "leave out --lr, --out" in r.output and r.output.count("\n") == 1
    r = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "is not a run folder" in r.output and r.output.count("\n") == 1


def test_memory_estimate_refuses_what_cannot_fit_and_lets_the_rest_run():
    with pytest.raises(ConfigError, match=r"784-3136-10 network needs about .* but this machine has 100 MiB free"):
        check_memory(make_config("vugrad"), available=100 * 2**20)
    check_memory(make_config("vugrad"), available=4 * 2**30)
    need, params = C.estimate_memory(TrainConfig(hidden=(100_000_000,)))
    assert params == 784 * 10**8 + 10**8 + 10**9 + 10 and need > 584 * 2**30  # the float64 draw alone is 584 GiB
    assert C.available_memory("cpu") is None or C.available_memory("cpu") > 0


def test_parse_hidden_is_strict():
    assert parse_hidden(" 300 , 100 ") == (300, 100) and parse_hidden("64x32") == (64, 32)
    for bad in ("-5", "300,-100", "300--100", "300,", ",300", "3.5", "", "1" * 5000):
        with pytest.raises(ConfigError):
            parse_hidden(bad)


def test_library_train_refuses_before_reading_data(no_data):
    from deltagrad.nn.train import train

    with pytest.raises(ConfigError, match="--limit 5 is too small"):
        train(TrainConfig(limit=5), None, progress=False)
    with pytest.raises(ConfigError, match="--lr"):
        check_config(TrainConfig(lr=float("nan")))


def test_the_optimiser_gives_the_learning_rate_when_none_is_given():
    assert C.resolve(TrainConfig()).lr == 1e-3
    assert C.resolve(TrainConfig(optimizer="sgd")).lr == 0.1
    assert C.resolve(TrainConfig(optimizer="momentum")).momentum == 0.9
    assert C.resolve(TrainConfig(optimizer="rmsprop", lr=0.5)).lr == 0.5
