"""Admin behaviour shared by the apps' ModelAdmins and inlines."""


class ReadOnlyAdminMixin:
    """Rows that are a record of what happened (imports, carts, order lines): staff may look
    at them in the admin but never add or change them there.

    Works for ``ModelAdmin`` and inlines alike (inlines pass the parent object as ``obj``).
    """

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
