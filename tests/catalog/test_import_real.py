"""The real 4,395-product sample, in its raw format, imported twice."""

from decimal import Decimal

import pytest

from catalog.importing import import_catalogue
from catalog.models import ImportRun, Product
from tests.catalog_files import stored_files

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_real_sample_imports_every_row_intact_and_reimports_as_unchanged(fashion_dev, media_root):
    report = import_catalogue(fashion_dev)

    assert (report.rows, report.created, report.rejected, report.without_image) == (4395, 4395, 0, 0)
    assert report.image_problems == []
    assert Product.objects.count() == 4395
    assert Product.objects.get(id=44065).name == "Boss Men Perfume, After Shave Balm and Shower Gel Set"
    assert Product.objects.get(id=7491).name == "Nike Women's EM Tempo 3.5\" Pink Short"
    assert Product.objects.get(id=7497).name == "Nike Women's EM Tempo 3.5\" Purple Short"
    assert Product.objects.get(id=3413).name == "Myntra Men's Yes, its all about me White T-shirt"
    unnamed = Product.objects.get(id=30992)
    assert (unnamed.name, unnamed.base_colour, unnamed.usage, unnamed.year) == ("", "", "", 2017)
    assert Product.objects.get(id=5401).season == ""
    assert Product.objects.get(id=25669).name == "Fastrack Men Black Dial Watch NA3039SL02"
    for field in [
        "gender",
        "master_category",
        "sub_category",
        "article_type",
        "base_colour",
        "season",
        "usage",
        "name",
    ]:
        assert not Product.objects.filter(**{field: "NA"}).exists(), field
    assert Product.objects.get(id=39386).price == Decimal("49.99")
    files = stored_files(media_root)
    assert len(files) == 4395

    again = import_catalogue(fashion_dev)

    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 4395, 0)
    assert stored_files(media_root) == files
    assert list(ImportRun.objects.values_list("created", "unchanged")) == [(0, 4395), (4395, 0)]
