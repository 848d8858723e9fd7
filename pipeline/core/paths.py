"""Where every stage reads and writes, relative to the project root (stages run there, as dvc.yaml runs them).

One place, so that a light module (the site generator, the grid runner's driver) can name a folder without
importing the heavy stage that writes it.
"""

from pathlib import Path

# The checkout this code runs from: what ships with the code (templates, CITATION.cff) is found from here,
# whatever the working directory.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = PROJECT_ROOT / "templates"

PARAMS_FILE = Path("params.yaml")
CONF_DIR = Path("conf")
DVC_LOCK = Path("dvc.lock")
DVC_CACHE = Path(".dvc/cache")

RAW_DIR = Path("data/raw")  # stage data
DOWNLOAD_CACHE = Path(".cache/downloads")
PREPARED_DIR = Path("data/prepared")  # stage preprocess
IMAGENET_DIR = Path("weights/imagenet")  # stage weights
MODELS_DIR = Path("models")  # stages train and repeat: models/<run id>/
TRAIN_INPUTS = MODELS_DIR / "train_inputs.json"  # stage train_inputs
STATE_DIR = Path(".cache/train-state")  # resume state of interrupted training runs
EVALUATION_DIR = Path("evaluation")  # stage evaluate: evaluation/<run id>/
SPEED_FILE = Path("speed.json")  # stage speed
SUBMISSIONS_DIR = Path("submissions")  # outside models and predictions: submissions/<name>/
SCORES_DIR = Path("scores")  # stage score: scores/<submission name>/
RESULTS_DIR = Path("results")  # stage aggregate
REFERENCE_DIR = Path("reference")  # the paper's numbers
FIGURES_DIR = Path("figures")  # stage figures
BROWSER_DIR = Path("browser")  # stage browser: the models' browser graphs and a test volume

SOURCES_DIR = Path("site")  # the website's hand-written sources and assets
DOCS_DIR = Path("build/docs")  # the generated Markdown
PUBLIC_DIR = Path("public")  # stage site
MKDOCS_CONFIG = Path("mkdocs.yml")

GRID_LOG_DIR = Path(".cache/grid-logs")
GRID_LOCK_DIR = Path(".cache/grid-locks")
