from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from config.admin_mixins import ReadOnlyAdminMixin
from config.request_limits import too_large
from recommender.vector_store import current_embeddings

from .filters import FACETS
from .forms import CatalogueImportForm, ProductImageField
from .importing import CatalogueFileError, import_uploaded_catalogue
from .importing.styles import MAX_ID
from .models import ImportRun, Product
from .stock import save_staff_edit

# Rows of a problem table shown on one page; the full list stays in the ImportRun.
MAX_SHOWN_PROBLEMS = 500


def problems_table(problems):
    """HTML table of an import's rejected rows or image problems."""
    return render_to_string(
        "admin/catalog/_import_problems.html",
        {"problems": problems[:MAX_SHOWN_PROBLEMS], "hidden": max(0, len(problems) - MAX_SHOWN_PROBLEMS)},
    )


class StockInput(forms.NumberInput):
    """The stock field, with the stock it shows posted back beside it (``<name>_loaded``)."""

    loaded = None

    def render(self, name, value, attrs=None, renderer=None):
        field = super().render(name, value, attrs, renderer)
        loaded = "" if self.loaded is None else self.loaded
        return field + format_html('<input type="hidden" name="{}_loaded" value="{}">', name, loaded)


class PostedOnly(forms.HiddenInput):
    """A value read from the request but rendered by another widget (StockInput)."""

    def render(self, name, value, attrs=None, renderer=None):
        return ""


class ProductAdminForm(forms.ModelForm):
    """Carries the stock as the page showed it, so saving applies only the staff member's
    own change to the stock (catalog.stock)."""

    stock_loaded = forms.IntegerField(required=False, widget=PostedOnly)

    class Meta:
        # Photos are checked and stored like imported ones (JPEG, pixel and size limits).
        field_classes = {"image": ProductImageField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "stock" in self.fields and self.instance.pk:
            widget = StockInput(attrs=self.fields["stock"].widget.attrs)
            widget.loaded = self["stock_loaded"].data if self.is_bound else self.instance.stock
            self.fields["stock"].widget = widget

    def has_changed(self):
        # A stock that moved since the page loaded (a sale) is not a change by this form;
        # the stock changed when the posted value differs from the value shown.
        if not self.instance.pk or "stock" not in self.fields or self["stock_loaded"].data in (None, ""):
            return super().has_changed()
        if set(self.changed_data) - {"stock", "stock_loaded"}:
            return True
        return str(self["stock"].data).strip() != str(self["stock_loaded"].data).strip()


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductAdminForm
    list_display = [
        "thumbnail",
        "id",
        "name",
        "article_type",
        "base_colour",
        "price",
        "stock",
        "is_active",
        "embedding_status",
        "is_demo",
    ]
    list_display_links = ["thumbnail", "id", "name"]
    list_editable = ["price", "stock", "is_active"]
    list_filter = [*FACETS.values(), "is_active", "is_demo"]
    search_fields = ["name"]
    search_help_text = "Search by name, or type a product id."
    list_per_page = 50
    readonly_fields = ["image_preview", "image_checksum", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["id", "name", "price", "stock", "is_active", "is_demo"]}),
        (
            "Categories",
            {"fields": [*FACETS.values(), "year"]},
        ),
        ("Image", {"fields": ["image_preview", "image", "image_checksum"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=ProductAdminForm, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change or "stock" not in form.cleaned_data:
            return super().save_model(request, obj, form, change)
        moved, now = save_staff_edit(
            obj, stock_wanted=form.cleaned_data["stock"], stock_loaded=form.cleaned_data.get("stock_loaded")
        )
        if moved:
            self.message_user(
                request,
                f"{obj.display_name}: the stock moved by {-moved:+d} while you were editing (sales or another "
                f"edit); only your own change was applied, so the stock is now {now}.",
                messages.WARNING,
            )

    def get_queryset(self, request):
        # Embedding status in the same query as the products (no query per row).
        current = current_embeddings().filter(product=OuterRef("pk"), checksum=OuterRef("image_checksum"))
        return super().get_queryset(request).annotate(has_vectors=Exists(current))

    @admin.display(description="visual search")
    def embedding_status(self, product):
        if not product.image:
            return "no image"
        return "indexed" if product.has_vectors else "waiting"

    @admin.display(description="Image")
    def thumbnail(self, product):
        if not product.image:
            return "—"
        return format_html(
            '<img src="{}" alt="" width="45" height="60" loading="lazy" style="object-fit: contain">',
            product.image.url,
        )

    @admin.display(description="Current image")
    def image_preview(self, product):
        if not product.image:
            return "No image"
        return format_html('<img src="{}" alt="" style="max-height: 320px">', product.image.url)

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.isdigit() and int(term) <= MAX_ID:
            results |= queryset.filter(pk=int(term))
        return results, may_have_duplicates

    def get_urls(self):
        # The import page comes before the admin's catch-all "<object_id>/" patterns.
        import_view = self.admin_site.admin_view(csrf_exempt(self.import_view))
        return [path("import/", import_view, name="catalog_product_import"), *super().get_urls()]

    def import_view(self, request):
        """The "Import catalogue" page: upload files, import them, show the report.

        The page is CSRF-exempt only so the size of a POST can be checked before its body
        is read; the form itself is CSRF-protected.
        """
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        if request.method == "POST" and too_large(request):
            limit = settings.CATALOG_UPLOAD_MAX_BYTES
            return self._render_import(
                request,
                CatalogueImportForm(),
                error=f"The upload is larger than the {filesizeformat(limit)} allowed. Nothing was imported.",
                status=413,
            )
        return csrf_protect(self._import_upload)(request)

    def _import_upload(self, request):
        if request.method != "POST":
            return self._render_import(request, CatalogueImportForm())
        form = CatalogueImportForm(request.POST, request.FILES)
        report = None
        if form.is_valid():
            try:
                report = import_uploaded_catalogue(
                    form.cleaned_data["styles_csv"], form.cleaned_data["archive"], user=request.user
                )
            except CatalogueFileError as error:
                form.add_error(None, str(error))
            else:
                self.message_user(
                    request,
                    f"Imported {report.imported} of {report.rows} rows; {report.rejected} rejected.",
                    messages.WARNING if report.rejected else messages.SUCCESS,
                )
        return self._render_import(request, form, report=report)

    def _render_import(self, request, form, report=None, error=None, status=200):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import catalogue",
            "form": form,
            "report": report,
            "error": error,
            "max_upload": settings.CATALOG_UPLOAD_MAX_BYTES,
            "recent_runs": ImportRun.objects.select_related("user")[:5],
        }
        if report is not None:
            context["rejected_table"] = problems_table(report.rejected_rows)
            context["image_table"] = problems_table(report.image_problems)
        return TemplateResponse(request, "admin/catalog/product/import.html", context, status=status)


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Past imports, read only: they are the record of what each import did."""

    list_display = [
        "started_at",
        "source",
        "user",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "without_image",
        "finished_at",
    ]
    list_select_related = ["user"]
    search_fields = ["source"]
    fields = [
        "source",
        "user",
        "started_at",
        "finished_at",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "without_image",
        "problems",
    ]
    readonly_fields = fields

    @admin.display(description="Rejected rows and image problems")
    def problems(self, run):
        if not run.rejected_rows:
            return "None"
        return problems_table(run.rejected_rows)

    def has_delete_permission(self, request, obj=None):
        return False
