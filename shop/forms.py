"""Forms of the storefront: shipping details at checkout and account sign-up."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from .models import Order
from .services import ShippingDetails

# Lets browsers fill in a saved address.
ADDRESS_AUTOCOMPLETE = {
    "full_name": "name",
    "email": "email",
    "address": "street-address",
    "city": "address-level2",
    "postal_code": "postal-code",
    "country": "country-name",
}


class ShippingForm(forms.Form):
    """Where an order goes. Lengths follow the Order fields so nothing is cut off."""

    full_name = forms.CharField(max_length=Order._meta.get_field("full_name").max_length)
    email = forms.EmailField()
    address = forms.CharField(max_length=Order._meta.get_field("address").max_length)
    city = forms.CharField(max_length=Order._meta.get_field("city").max_length)
    postal_code = forms.CharField(max_length=Order._meta.get_field("postal_code").max_length)
    country = forms.CharField(max_length=Order._meta.get_field("country").max_length)
    # The cart the shopper saw on the checkout page; a second submit of the same page
    # is recognised by it and sent to the order that was already placed.
    cart = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, token in ADDRESS_AUTOCOMPLETE.items():
            self.fields[name].widget.attrs["autocomplete"] = token

    def shipping_details(self):
        """The cleaned form as the checkout service expects it."""
        data = self.cleaned_data
        return ShippingDetails(
            full_name=data["full_name"],
            email=data["email"],
            address=data["address"],
            city=data["city"],
            postal_code=data["postal_code"],
            country=data["country"],
        )


class SignupForm(UserCreationForm):
    """A new shopper account: username, email and password."""

    email = forms.EmailField(help_text="Order confirmations are sent here.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")
