"""Profiles: named overlays on the paper's protocol in conf/, composed into params.yaml by Hydra.

The way to switch is DVC's own: ``dvc exp run -S profile=tiny`` composes conf/config.yaml with
conf/profile/tiny.yaml into params.yaml and runs the pipeline. This module composes the same way for
code that must not run anything (tests, documentation checks, ``python -m pipeline.core.profiles NAME``).
"""

from pathlib import Path
from typing import Any

from pipeline.core.config import ConfigError, parse_params
from pipeline.core.errors import ArgumentParser, run_stage
from pipeline.core.paths import PARAMS_FILE

CONF_DIR = Path("conf")


def available(conf_dir: Path = CONF_DIR) -> list[str]:
    return sorted(path.stem for path in (conf_dir / "profile").glob("*.yaml"))


def compose(profile: str, conf_dir: Path = CONF_DIR, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """params.yaml's content for a profile, exactly as ``dvc exp run -S profile=...`` writes it."""
    import yaml
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    names = available(conf_dir)
    if profile not in names:
        raise ConfigError(f"unknown profile '{profile}'; valid choices: {', '.join(names)}")
    profile_file = Path(conf_dir) / "profile" / f"{profile}.yaml"
    try:
        with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base=None):
            config = hydra_compose(config_name="config", overrides=[f"profile={profile}", *overrides])
        raw = OmegaConf.to_container(config, resolve=True)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{mark.name}: not valid YAML at line {mark.line + 1}" if mark else f"{profile_file}: not valid YAML"
        raise ConfigError(where) from None
    except RecursionError:
        raise ConfigError(f"{profile_file}: nested too deeply to be a profile") from None
    except (HydraException, OmegaConfBaseException, UnicodeDecodeError) as error:
        raise ConfigError(f"{profile_file}: cannot be composed ({str(error).splitlines()[0]})") from None
    try:
        parse_params(raw)  # fail here, not in a stage, when a profile is malformed
    except ConfigError as error:
        raise ConfigError(f"{profile_file} (over {Path(conf_dir) / 'config.yaml'}): {error}") from None
    return raw


def paper_grid(conf_dir: Path = CONF_DIR):
    """The paper's grid (pipeline.core.config.GridParams): 3 experiments x 4 architectures x 25 encoders x 2
    initialisations, as the reference configuration gives it."""
    return parse_params(compose("paper", conf_dir)).grid


def write(profile: str, path: Path = PARAMS_FILE, conf_dir: Path = CONF_DIR) -> None:
    """Write params.yaml for a profile without running anything (``dvc exp run -S`` does this and runs)."""
    from dvc.utils.serialize import dump_yaml

    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: its folder {path.parent} does not exist")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a params file")
    dump_yaml(path, compose(profile, conf_dir))


def main() -> None:
    parser = ArgumentParser(description="Compose params.yaml from conf/ for a profile.")
    parser.add_argument("profile", help=f"one of: {', '.join(available())}")
    parser.add_argument("--out", type=Path, default=PARAMS_FILE)
    args = parser.parse_args()
    write(args.profile, args.out)
    print(f"wrote {args.out} for profile '{args.profile}'; now run: dvc repro")


if __name__ == "__main__":
    run_stage(main)
