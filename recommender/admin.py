"""Admin for the recommender's own records: vectors, index builds (with a "Rebuild index"
button that queues the task) and product views."""

from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from config.admin_mixins import ReadOnlyAdminMixin

from .models import Embedding, IndexBuild, ProductView
from .queueing import REBUILD_TASK, send_task


@admin.register(Embedding)
class EmbeddingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["product_id", "model_name", "short_checksum", "updated_at"]
    list_filter = ["model_name"]
    search_fields = ["product__id", "product__name"]
    readonly_fields = ["product", "model_name", "checksum", "updated_at"]
    exclude = ["cnn", "colour"]

    @admin.display(description="image checksum")
    def short_checksum(self, obj):
        return obj.checksum[:12]


@admin.register(IndexBuild)
class IndexBuildAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Index builds, newest first, with a "Rebuild index" button on the list."""

    change_list_template = "admin/recommender/indexbuild/change_list.html"
    list_display = [
        "pk",
        "status",
        "model_name",
        "item_count",
        "dimensions",
        "n_trees",
        "duration_seconds",
        "started_at",
    ]
    list_filter = ["status", "model_name"]
    readonly_fields = [field.name for field in IndexBuild._meta.fields]

    def get_urls(self):
        rebuild = self.admin_site.admin_view(require_POST(self.rebuild_view))
        return [path("rebuild/", rebuild, name="recommender_indexbuild_rebuild")] + super().get_urls()

    def rebuild_view(self, request):
        if not self.has_view_permission(request):
            return redirect("admin:index")
        if send_task(REBUILD_TASK):
            self.message_user(request, "Index rebuild started; the new build appears here when it is ready.")
        else:
            self.message_user(request, "The task queue is unreachable; try again later.", messages.ERROR)
        return redirect(reverse("admin:recommender_indexbuild_changelist"))


@admin.register(ProductView)
class ProductViewAdmin(admin.ModelAdmin):
    list_display = ["user", "product", "viewed_at"]
    list_select_related = ["user", "product"]
    raw_id_fields = ["user", "product"]
