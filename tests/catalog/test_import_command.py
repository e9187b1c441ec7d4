"""`manage.py import_catalog PATH`: progress, report and errors on the command line."""

import io

import pytest
from django.core.management import CommandError, call_command

from catalog.models import ImportRun, Product
from tests.catalog_files import styles_line, write_catalogue

pytestmark = pytest.mark.django_db


def run_import(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_catalog", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_imports_and_prints_the_report(tmp_path, media_root):
    folder = write_catalogue(
        tmp_path / "cat", [styles_line(1), styles_line("x1"), styles_line(3)], images={1: b"broken", 3: b""}
    )

    out, err = run_import(str(folder))

    assert "created:            2" in out
    assert "rejected:           1" in out
    assert "rows without image: 2" in out
    assert "line 3 (id x1): id 'x1' is not a whole number" in out
    assert "line 2 (id 1): broken image" in out
    assert "Importing" in err and "2/2" in err
    assert ImportRun.objects.get().created == 2


def test_demo_option_marks_products_as_demo(tmp_path, media_root):
    folder = write_catalogue(tmp_path / "cat", [styles_line(1)], images=[1])

    run_import(str(folder), "--demo")

    assert Product.objects.get(id=1).is_demo


def test_command_fails_clearly_on_a_file_it_cannot_import(tmp_path, media_root):
    folder = write_catalogue(tmp_path / "cat", ["1,Men"], header="id,gender")

    with pytest.raises(CommandError, match="lacks the required column.*productDisplayName"):
        run_import(str(folder))
    assert not Product.objects.exists()


def test_command_fails_clearly_on_a_missing_path(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run_import(str(tmp_path / "missing"))
