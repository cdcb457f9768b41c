"""TrainConfig: one-line errors naming the setting, resolution of the defaults, and what its
fields' metadata derive: flags, grid flags, the member and output lists."""

import dataclasses
import json

import pytest
from absl import flags

from data import files
from data.errors import UserError
from experiments import config_flags
from experiments.training.settings import config as config_lib
from experiments.training.settings import grid as grid_lib
from experiments.training.settings import settings
from experiments.training.settings.config import TrainConfig


@pytest.mark.parametrize(
    "change,message",
    [
        ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'; choose one of sgd, momentum, "
                                 "adagrad, adadelta, rmsprop, adam"),
        ({"model": "resnet"}, "choose one of mlp, cnn, cnn_small, cifar_convnet"),
        ({"dataset": "svhn"}, "choose one of mnist, fashion_mnist, cifar10"),
        ({"optimizer_form": "paper"}, "choose one of optax, textbook"),
        ({"gd_mode": "batch"}, "choose one of minibatch, stochastic, full_batch"),
        ({"schedule": "linear"}, "constant, step, cosine, warmup_cosine"),
        ({"model": "mlp", "activation": "swishy"}, "unknown activation 'swishy'"),
        ({"model": "mlp", "activation": "softplus", "activation_params": (("beta", 0.0),)},
         r"beta must be a finite number in \(0, inf\), got 0.0"),
        ({"model": "mlp", "activation": "softshrink",
          "activation_params": (("shrink_lambda", float("inf")),)}, "shrink_lambda must be a finite"),
        ({"model": "mlp", "activation": "rrelu", "activation_params": (("rrelu_lower", 0.5),)},
         "rrelu_lower must be <= rrelu_upper, got 0.5 > 0.333"),
        ({"model": "mlp", "activation": "hardtanh", "activation_params": (("hardtanh_max", -1.0),)},
         "hardtanh_min must be < hardtanh_max, got -1.0 >= -1.0"),
        ({"learning_rate": 0.0}, r"learning_rate must be a finite number in \(0, inf\), got 0.0"),
        ({"learning_rate": float("nan")}, "learning_rate must be a finite number"),
        ({"learning_rate": float("inf")}, "learning_rate must be a finite number"),
        ({"batch_size": 0}, r"batch_size must be an integer in \[1, 2147483647\], got 0"),
        ({"num_epochs": -1}, "num_epochs must be an integer in"),
        ({"validation_size": -5}, "validation_size must be an integer in"),
        ({"seed": -1}, r"seed must be an integer in \[0, 4294967295\], got -1"),
        ({"seed": 10**23}, r"seed must be an integer in \[0, 4294967295\]"),
        ({"folds": 1}, r"folds must be 0 \(a holdout split\) or an integer in \[2, "),
        ({"folds": 3, "fold": 3}, r"fold must be an integer in \[0, 2\], got 3"),
        ({"model": "mlp", "hidden_sizes": (64, 0)}, "hidden_sizes must be an integer in"),
        ({"dropout": 1.0}, r"dropout must be a finite number in \[0, 1\), got 1.0"),
        ({"l2": -1.0}, r"l2 must be a finite number in \[0, inf\)"),
        ({"l1": float("inf")}, "l1 must be a finite number"),
        ({"weight_decay": float("inf")}, "weight_decay must be a finite number"),
        ({"patience": 2, "validation_size": 0}, "patience needs a validation split"),
        ({"batch_norm": True, "gd_mode": "stochastic"}, "batch_norm needs minibatch descent"),
        ({"batch_norm": True, "batch_size": 2000}, "2 <= batch_size <= chunk_size"),
        ({"optimizer": "sgd", "b1": 0.9}, r"sgd \(optax form\) does not take --b1"),
        ({"optimizer": "adam", "b2": 1.0}, r"b2 must be a finite number in \[0, 1\), got 1.0"),
        ({"optimizer": "adam", "eps": float("inf")}, r"eps must be a finite number in \(0, inf\)"),
        ({"optimizer": "adagrad", "initial_accumulator": float("inf")},
         r"initial_accumulator must be a finite number in \[0, inf\)"),
        ({"learning_rate": 1e-300}, "learning_rate must be 0 or of magnitude 1.18e-38 to 3.4e"
                                    "\\+38 to keep its value in float32, got 1e-300"),
        ({"l2": 1e39}, "l2 must be 0 or of magnitude .* got 1e\\+39"),
        ({"optimizer": "adam", "eps": 1e-40}, "eps must be 0 or of magnitude"),
        ({"clip_norm": 0.0}, r"clip_norm must be a finite number in \(0, inf\)"),
        ({"schedule": "warmup_cosine", "warmup_epochs": 0.0},
         r"warmup_epochs must be a finite number in \(0, inf\)"),
        ({"schedule": "step", "step_decay_rate": 2.0},
         r"step_decay_rate must be a finite number in \(0, 1\]"),
    ],
)
def test_invalid_settings_are_refused_in_one_line_naming_the_setting(change, message):
  with pytest.raises(UserError, match=message) as raised:
    TrainConfig(**change).resolve()
  assert "\n" not in str(raised.value)


def test_resolve_fills_the_tables_defaults_once():
  config = TrainConfig(model="cnn", optimizer="momentum", optimizer_form="textbook").resolve()
  assert config.learning_rate == 0.5 and config.momentum == 0.9  # the textbook form's
  assert config.b1 is None and config.eps is None  # momentum does not take them
  assert config.dropout == 0.5  # the cnn's own rate
  assert config.hidden_sizes is None and config.activation is None  # not the cnn's settings
  assert config.data_seed == config.seed == 0
  assert config.resolve() == config  # idempotent


def test_a_default_given_explicitly_resolves_to_the_same_config():
  implicit = TrainConfig(model="mlp", optimizer="adam").resolve()
  explicit = TrainConfig(model="mlp", optimizer="adam", learning_rate=1e-3, b1=0.9, b2=0.999,
                         eps=1e-8, dropout=0.0, data_seed=0).resolve()
  assert implicit == explicit
  assert implicit.training_settings() == explicit.training_settings()


def test_folds_replace_the_holdout_split():
  config = TrainConfig(folds=5, validation_size=5000).resolve()
  assert config.validation_size == 0 and config.folds == 5


def test_member_and_output_settings_are_not_shared_settings():
  config = TrainConfig().resolve()
  shared = config.shared_settings()
  for name in (*config_lib.MEMBER_SETTINGS, *config_lib.OUTPUT_SETTINGS):
    assert name not in shared
  assert {"model", "optimizer", "batch_size", "folds", "data_seed"} <= set(shared)
  other = dataclasses.replace(config, seed=3, learning_rate=0.1, plots=False)
  assert other.shared_settings() == shared


def test_activation_parameters_resolve_to_those_the_activation_takes():
  """Every parameter of the chosen activation, defaults filled; the others' are dropped."""
  given = (("beta", 2.0), ("shrink_lambda", 0.1))
  config = TrainConfig(model="mlp", activation="mish", activation_params=given).resolve()
  assert config.activation_params == (("beta", 2.0),)
  rrelu = TrainConfig(model="mlp", activation="rrelu", activation_params=given).resolve()
  assert rrelu.activation_params == (("rrelu_lower", 1 / 8), ("rrelu_upper", 1 / 3))
  assert TrainConfig(model="cnn").resolve().activation_params is None
  with pytest.raises(UserError, match=r"^--beta, --shrink_lambda \(activation parameters\) does "
                     "not apply to cnn: it is a setting of mlp, rnn$"):
    TrainConfig(model="cnn", activation_params=given).resolve()


@pytest.mark.parametrize("model,setting,value,owners", [
    ("cnn", "hidden_sizes", (64,), "mlp, rnn, lstm, gru, ae, vae"),
    ("cnn", "bidirectional", True, "rnn, lstm, gru"),
    ("mlp", "sequence", "pixels", "rnn, lstm, gru"),
    ("lstm", "activation", "tanh", "mlp, rnn"),
    ("gru", "batch_norm", True, "mlp, cnn, cnn_small, cifar_convnet"),
])
def test_an_architecture_setting_the_model_lacks_is_refused(model, setting, value, owners):
  with pytest.raises(UserError, match=f"^--{setting} does not apply to {model}: it is a setting "
                     f"of {owners}$"):
    TrainConfig(model=model, **{setting: value}).resolve()


def test_architecture_settings_resolve_to_the_models_own():
  """None: the model's default; a model that lacks a setting resolves it to None."""
  mlp, rnn, lstm, cnn = (TrainConfig(model=m).resolve() for m in ("mlp", "rnn", "lstm", "cnn"))
  assert (mlp.hidden_sizes, mlp.activation, mlp.batch_norm, mlp.sequence) == (
      (512, 512), "relu", False, None)
  assert (rnn.hidden_sizes, rnn.activation, rnn.bidirectional, rnn.sequence) == (
      (128,), "tanh", False, "rows")
  assert (lstm.activation, lstm.batch_norm, lstm.sequence) == (None, None, "rows")
  assert (cnn.hidden_sizes, cnn.activation, cnn.bidirectional) == (None, None, None)
  assert TrainConfig(model="mlp", hidden_sizes=()).resolve().hidden_sizes == ()


@pytest.mark.parametrize("settings,message", [
    ({"model": "lstm", "hidden_sizes": ()}, "lstm needs at least one layer"),
    ({"model": "rnn", "activation": "prelu"}, "rnn cannot take the activation prelu"),
    ({"model": "rnn", "sequence": "columns"}, "unknown sequence 'columns'"),
])
def test_recurrent_settings_out_of_place_are_refused(settings, message):
  with pytest.raises(UserError, match=message):
    TrainConfig(**settings).resolve()


def test_json_round_trip(tmp_path):
  config = TrainConfig(model="mlp", hidden_sizes=(64, 32), l2=1e-4, activation="hardtanh",
                       activation_params=(("hardtanh_min", -2.0),)).resolve()
  path = tmp_path / "config.json"
  path.write_text(json.dumps(config_lib.to_json(config)))
  assert config_lib.from_json(files.read_json(str(path))) == config


@dataclasses.dataclass(frozen=True)
class WithLabelSmoothing(TrainConfig):
  """A copy of the config with one more member setting, as a new feature would add it."""

  label_smoothing: float = settings.setting(
      0.0, "ε of label smoothing.", kind=settings.MEMBER, check=settings.Number(0.0, 1.0),
      sweep=settings.MEMBER)


def _parsed(config_class, argv, grid=False):
  values = flags.FlagValues()
  config_flags.define_config_flags(config_class, values)
  if grid:
    config_flags.define_grid_flags(config_class, values)
  values(["prog", *argv])
  return values


def test_a_new_field_gets_its_flag_grid_flag_check_and_kind_with_no_other_line():
  values = _parsed(WithLabelSmoothing, ["--label_smoothing=0.1", "--label_smoothings=0,0.05"],
                   grid=True)
  assert "ε of label smoothing. In [0, 1)." == values["label_smoothing"].help
  config = config_flags.config_from_flags(WithLabelSmoothing, values)
  assert config.label_smoothing == 0.1 and config.resolve().label_smoothing == 0.1
  assert config_flags.grid_from_flags(WithLabelSmoothing, values) == {
      "label_smoothing": [0.0, 0.05]}
  assert "label_smoothing" in settings.names(WithLabelSmoothing, of_kind=settings.MEMBER)
  assert "label_smoothing" not in config.resolve().shared_settings()
  with pytest.raises(UserError, match=r"label_smoothing must be a finite number in \[0, 1\)"):
    dataclasses.replace(config, label_smoothing=1.5).resolve()


def test_every_field_but_fold_is_a_flag_with_its_default_and_the_config_round_trips():
  values = _parsed(TrainConfig, [])
  config = config_flags.config_from_flags(TrainConfig, values)
  assert config == TrainConfig()
  unflagged = {f.name for f in dataclasses.fields(TrainConfig) if not f.metadata["flag"]}
  assert unflagged == {"fold", "activation_params", "archive_dir", "tfds_data_dir"}
  for field in dataclasses.fields(TrainConfig):
    if field.metadata["flag"]:
      assert field.name in values and field.metadata["help"] in values[field.name].help


def test_the_sweep_lists_are_the_fields_marked_sweepable():
  assert grid_lib.GROUP_SETTINGS == ("model", "hidden_sizes", "activation", "batch_norm",
                                     "bidirectional", "sequence", "code_size", "latent_size",
                                     "reconstruction_loss", "optimizer")
  assert grid_lib.MEMBER_GRID == ("discriminator_learning_rate", "learning_rate", "learning_rate_multiplier", "momentum", "b1",
                                  "b2", "eps", "initial_accumulator", "l1", "l2", "weight_decay",
                                  "dropout", "seed")
  assert set(config_lib.MEMBER_SETTINGS) == {*grid_lib.MEMBER_GRID, "fold"} - {
      "learning_rate_multiplier"}


@pytest.mark.parametrize("argv,message", [
    (["--seeds=0,x"], "--seeds must be integers, got 0,x"),
    (["--batch_norms=maybe"], "--batch_norms must be true or false, got maybe"),
    (["--l2s=1e-4,a"], "--l2s must be numbers, got 1e-4,a"),
    (["--hidden_sizes_grid=64;3x"], "hidden_sizes must be integers or none, got 3x"),
    (["--hidden_sizes_grid=64;;32"], "hidden_sizes needs widths such as 512,512, or none"),
    (["--hidden_sizes_grid=64,"], "hidden_sizes needs widths"),
])
def test_a_grid_flag_that_does_not_parse_is_one_line_naming_it(argv, message):
  values = _parsed(TrainConfig, argv, grid=True)
  with pytest.raises(UserError, match=message):
    config_flags.grid_from_flags(TrainConfig, values)


@pytest.mark.parametrize("value,expected", [("none", ()), ("64,32", (64, 32)), ("", None),
                                            ("64,,32", None)])
def test_no_hidden_layer_is_said_as_none_and_an_empty_value_is_refused(value, expected):
  values = _parsed(TrainConfig, [f"--hidden_sizes={value}"])
  if expected is None:
    with pytest.raises(UserError, match="or none for no hidden layer"):
      config_flags.config_from_flags(TrainConfig, values)
  else:
    assert config_flags.config_from_flags(TrainConfig, values).hidden_sizes == expected


def test_configs_must_be_resolved_before_a_run_is_made():
  from experiments.training.loop import run as run_lib
  with pytest.raises(ValueError, match="resolve"):
    run_lib.make_run([TrainConfig(model="mlp")], (8, 8, 1), 10, 100)
