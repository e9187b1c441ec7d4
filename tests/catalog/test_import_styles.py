"""Reading styles.csv: the raw dataset's quirks, header-driven columns, bad rows and files."""

from decimal import Decimal

import pytest

from catalog.importing import CatalogueFileError
from catalog.importing.styles import read_styles
from tests.catalog_files import STYLES_HEADER, styles_line


def styles(*lines, header=STYLES_HEADER, ending="\n"):
    return ending.join([header, *lines]).encode("utf-8") + ending.encode()


def only_row(data):
    result = read_styles(data)
    assert result.rejected == []
    assert len(result.rows) == 1
    return result.rows[0]


def test_bare_commas_stay_in_the_name():
    row = only_row(styles(styles_line(44065, name="Boss Men Perfume, After Shave Balm and Shower Gel Set")))
    assert row.id == 44065
    assert row.values["name"] == "Boss Men Perfume, After Shave Balm and Shower Gel Set"
    assert row.values["usage"] == "Casual"


def test_bare_inch_mark_stays_in_the_name():
    row = only_row(styles(styles_line(7491, name="Nike Women's EM Tempo 3.5\" Pink Short")))
    assert row.values["name"] == "Nike Women's EM Tempo 3.5\" Pink Short"


def test_name_quoted_by_a_csv_writer_loses_its_quotes():
    row = only_row(styles(styles_line(1, name='"Tie, Cufflink and ""Pocket"" Square"')))
    assert row.values["name"] == 'Tie, Cufflink and "Pocket" Square'


def test_na_and_empty_cells_mean_no_value():
    row = only_row(styles(styles_line(30992, name="NA", colour="NA", season="", year="NA", usage="NA")))
    assert row.values == {
        "gender": "Men",
        "master_category": "Apparel",
        "sub_category": "Topwear",
        "article_type": "Tshirts",
        "base_colour": "",
        "season": "",
        "year": None,
        "usage": "",
        "name": "",
    }


def test_na_inside_a_value_is_kept():
    row = only_row(styles(styles_line(25669, name="Fastrack Men Black Dial Watch NA3039SL02")))
    assert row.values["name"] == "Fastrack Men Black Dial Watch NA3039SL02"


def test_windows_line_endings_bom_and_blank_lines():
    data = b"\xef\xbb\xbf" + styles(
        styles_line(1, name="First"), "", styles_line(2, name="Second"), ending="\r\n"
    )
    result = read_styles(data)
    assert [(row.line, row.id, row.values["name"]) for row in result.rows] == [
        (2, 1, "First"),
        (4, 2, "Second"),
    ]


def test_header_decides_column_order_and_optional_price_and_stock():
    header = "productDisplayName,ID,articleType,Price,stock,colour_code"
    result = read_styles(styles("Shirt, slim fit,77,Shirts,24.5,3,X1", "Plain,78,Jeans,,,", header=header))
    assert result.rejected == []
    assert result.columns == ["productDisplayName", "id", "articleType", "price", "stock"]
    assert result.ignored_columns == ["colour_code"]
    first, second = result.rows
    assert (first.id, first.values, first.price, first.stock) == (
        77,
        {"name": "Shirt, slim fit", "article_type": "Shirts"},
        Decimal("24.50"),
        3,
    )
    assert (second.price, second.stock) == (None, None)


def test_values_written_by_pandas_are_accepted():
    header = STYLES_HEADER + ",price,stock"
    row = only_row(styles(styles_line(5, year="2012.0") + ",19.999,4.0", header=header))
    assert (row.values["year"], row.price, row.stock) == (2012, Decimal("20.00"), 4)


def test_missing_required_columns_refuse_the_file_naming_them():
    with pytest.raises(CatalogueFileError) as error:
        read_styles(styles("Men,Apparel", header="gender,masterCategory"))
    assert "id" in str(error.value) and "productDisplayName" in str(error.value)


def test_column_named_twice_refuses_the_file():
    with pytest.raises(CatalogueFileError, match="'id' twice"):
        read_styles(styles("1,2,Tee", header="id,id,productDisplayName"))


def test_empty_file_is_refused():
    with pytest.raises(CatalogueFileError, match="empty"):
        read_styles(b"")


def test_utf16_file_is_refused_with_a_clear_message():
    data = styles(styles_line(1)).decode().encode("utf-16")
    with pytest.raises(CatalogueFileError, match="UTF-16"):
        read_styles(data)


def test_undecodable_line_is_rejected_with_its_line_number():
    data = styles(styles_line(1), styles_line(2)) + styles_line(3, name="Caf\xe9 Shirt").encode("latin-1")
    result = read_styles(data)
    assert [row.id for row in result.rows] == [1, 2]
    [rejected] = result.rejected
    assert (rejected.line, rejected.id) == (4, "3")
    assert "not UTF-8" in rejected.reason and "0xe9" in rejected.reason


def test_bad_ids_are_rejected_with_line_and_reason():
    data = styles(
        styles_line(10),
        styles_line("abc"),
        styles_line(-5),
        styles_line(""),
        styles_line(10, name="Again"),
        styles_line(0),
        styles_line(11),
    )
    result = read_styles(data)
    assert [row.id for row in result.rows] == [10, 11]
    reasons = {rejected.line: rejected.reason for rejected in result.rejected}
    assert reasons[3] == "id 'abc' is not a whole number"
    assert reasons[4] == "id -5 is negative"
    assert reasons[5] == "id is empty"
    assert reasons[6] == "id 10 appears again (first on line 2)"
    assert "outside" in reasons[7]


def test_other_bad_cells_reject_the_row_and_name_every_problem():
    header = STYLES_HEADER + ",price,stock"
    data = styles(
        styles_line(1, year="twenty") + ",-3,2",
        styles_line(2, gender="M" * 21) + ",10,many",
        styles_line(3) + ",9.99,5",
        header=header,
    )
    result = read_styles(data)
    assert [row.id for row in result.rows] == [3]
    reasons = {rejected.line: rejected.reason for rejected in result.rejected}
    assert "year 'twenty' is not a whole number" in reasons[2]
    assert "price '-3'" in reasons[2]
    assert "gender is longer than 20 characters" in reasons[3]
    assert "stock 'many' is not a whole number" in reasons[3]


def test_short_line_is_rejected():
    result = read_styles(styles("12,Men,Apparel"))
    assert result.rows == []
    [rejected] = result.rejected
    assert (rejected.line, rejected.id) == (2, "12")
    assert rejected.reason == "has 3 fields, the header names 10"
