import pytest

from pipeline.core.cells import Cell, grid_cells, parse_cell_id
from pipeline.core.profiles import paper_grid
from tests.conftest import ROOT


def test_the_full_grid_has_600_distinct_ids_that_round_trip():
    cells = paper_grid(ROOT / "conf").cells()
    assert len(cells) == 600
    assert len({cell.id for cell in cells}) == 600
    for cell in cells:
        assert parse_cell_id(cell.id) == cell


def test_ids_read_naturally():
    cell = Cell("lesion_b", "fpn", "efficientnet-b3", "imagenet")
    assert cell.id == "lesion_b-fpn-efficientnet-b3-imagenet"
    assert parse_cell_id("lung-unet-resnext50_32x4d-random").encoder == "resnext50_32x4d"


def test_grid_order_is_dvc_matrix_order():
    cells = grid_cells(["lung", "lesion_a"], ["unet"], ["resnet18", "vgg11"], ["random", "imagenet"])
    assert [cell.id for cell in cells][:3] == [
        "lung-unet-resnet18-random",
        "lung-unet-resnet18-imagenet",
        "lung-unet-vgg11-random",
    ]


@pytest.mark.parametrize(
    ("cell_id", "message"),
    [
        ("lung-unet-resnet18", "is not a model id"),
        ("lungs-unet-resnet18-random", "unknown experiment 'lungs'"),
        ("lung-u.net-resnet18-random", "'u.net' is not an architecture name"),
        ("lung-unet-resnet18-null", "valid: random, imagenet"),
    ],
)
def test_malformed_ids_are_refused(cell_id, message):
    with pytest.raises(ValueError, match=message):
        parse_cell_id(cell_id)
