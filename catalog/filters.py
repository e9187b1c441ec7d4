"""The catalogue's facets and name search: one FilterSet for the storefront list page and the
products API (whose OpenAPI parameters django-filter and drf-spectacular derive from it)."""

import django_filters
from django import forms

MAX_SEARCH_LENGTH = 100


class FacetFilter(django_filters.CharFilter):
    """One facet: an exact value of a product field, surrounding spaces ignored."""

    def __init__(self, field_name, label):
        super().__init__(
            field_name=field_name,
            label=label,
            help_text=f"Only products whose {label.lower()} is exactly this value.",
        )


class SearchField(forms.CharField):
    """The search box: stripped, and only its first ``MAX_SEARCH_LENGTH`` characters count."""

    def to_python(self, value):
        return super().to_python(value)[:MAX_SEARCH_LENGTH]


class NameSearchFilter(django_filters.CharFilter):
    """Every word must appear in the name (case-insensitive), so "blue jeans" finds "Blue Slim Jeans"."""

    field_class = SearchField

    def filter(self, queryset, value):
        for word in value.split():
            queryset = queryset.filter(name__icontains=word)
        return queryset


class ProductFilter(django_filters.FilterSet):
    """Facet filters (one exact value each) and the name search ``q``; unknown parameters are ignored.

    The parameters are styles.csv's column names; the labels are what shoppers read. Give it
    the products to filter (``Product.objects.visible()`` for shoppers).
    """

    gender = FacetFilter("gender", "Gender")
    masterCategory = FacetFilter("master_category", "Category")
    subCategory = FacetFilter("sub_category", "Subcategory")
    articleType = FacetFilter("article_type", "Type")
    baseColour = FacetFilter("base_colour", "Colour")
    season = FacetFilter("season", "Season")
    usage = FacetFilter("usage", "Usage")
    q = NameSearchFilter(
        label="Search",
        help_text=f"Name search: every word must appear in the name (first {MAX_SEARCH_LENGTH} chars).",
    )

    def chosen(self) -> dict[str, str]:
        """The facet values and search term in effect, in the order of the filters."""
        if not self.is_bound:
            return {}
        self.is_valid()  # cleans the data; a value the form refuses (a NUL character) is left out
        return {name: value for name, value in self.form.cleaned_data.items() if value}


# Query parameter -> model field, and -> label, in the order the facets are shown.
FACETS = {name: f.field_name for name, f in ProductFilter.base_filters.items() if isinstance(f, FacetFilter)}
FACET_LABELS = {name: ProductFilter.base_filters[name].label for name in FACETS}
