"""Form validation only: the services decide (password rules, unique email, throttling)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.password_validation import password_validators_help_text_html
from django.core.mail import EmailMultiAlternatives
from django.template import loader

from accounts import services
from accounts.models import User, normalize_email
from accounts.services import EMAIL_TAKEN_MESSAGE, NAME_MAX_LENGTH
from shopcart.mail import send_later

# Every form that asks for a new password twice says this when the two differ (Django's own forms had
# their own wording: issue 17).
PASSWORD_MISMATCH_MESSAGE = "The two passwords do not match."  # noqa: S105 - a message, not a password


class SignupForm(forms.Form):
    # The length is the service's to check, in its words (the API's too); the browser stops at it anyway.
    name = forms.CharField(
        widget=forms.TextInput(attrs={"autocomplete": "name", "autofocus": True, "maxlength": NAME_MAX_LENGTH})
    )
    email = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        # The rules up front (from the validators the service applies), not only once one is broken.
        help_text=password_validators_help_text_html,
    )
    password2 = forms.CharField(
        label="Password (again)", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("password1") and cleaned.get("password2") and cleaned["password1"] != cleaned["password2"]:
            self.add_error("password2", PASSWORD_MISMATCH_MESSAGE)
        return cleaned


class LoginForm(forms.Form):
    email = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}))
    password = forms.CharField(
        label="Password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class SetPasswordForm(auth_forms.SetPasswordForm):
    """Django's form for a new password (the reset link's page), in the shop's words."""

    error_messages = {**auth_forms.SetPasswordForm.error_messages, "password_mismatch": PASSWORD_MISMATCH_MESSAGE}


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's form (its user lookup, its one-use tokens) with the mail handed to the sender thread:
    the page answers in the same time whether or not the address has an account."""

    email = forms.EmailField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )

    def send_mail(  # type: ignore[override]
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        send_later(EmailMultiAlternatives(subject, body, from_email, [to_email]))


class NameForm(forms.Form):
    # Neither required nor length-checked here: the service's rule and messages are the API's too.
    name = forms.CharField(
        required=False, widget=forms.TextInput(attrs={"autocomplete": "name", "maxlength": NAME_MAX_LENGTH})
    )


def _current_password_field() -> forms.CharField:
    return forms.CharField(
        label="Current password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class EmailChangeForm(forms.Form):
    email = forms.EmailField(
        label="New email",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text="We send a link to the new address; your address changes when you open it.",
    )
    current_password = _current_password_field()


class DeleteAccountForm(forms.Form):
    current_password = _current_password_field()


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's form, with the shop's rule for a new password (accounts.services.new_password_problems:
    not the current one, then Django's validators). Checked only once the current password is right:
    otherwise "that is your current password" would tell a guesser what the current one is. Two new
    passwords that differ are told in the shop's words."""

    error_messages = {
        **auth_forms.PasswordChangeForm.error_messages,
        "password_mismatch": PASSWORD_MISMATCH_MESSAGE,
    }

    def validate_password_for_user(self, user: User, password_field_name: str = "password2") -> None:  # noqa: S107
        password = self.cleaned_data.get(password_field_name)
        if password and "old_password" in self.cleaned_data:
            for message in services.new_password_problems(user=user, password=password):
                self.add_error(password_field_name, message)


class _EmailUniqueMixin:
    """The admin's user forms: a clear message for an address taken in another case (the model's
    clean() lower-cases it first, so the unique check compares like with like)."""

    instance: User

    def clean_email(self) -> str:
        email = normalize_email(self.cleaned_data.get("email") or "")  # type: ignore[attr-defined]
        taken = User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists()
        if taken:
            raise forms.ValidationError(EMAIL_TAKEN_MESSAGE, code="unique")
        return email


class AdminUserAddForm(_EmailUniqueMixin, AdminUserCreationForm):
    error_messages = {**AdminUserCreationForm.error_messages, "password_mismatch": PASSWORD_MISMATCH_MESSAGE}

    class Meta:
        model = User
        fields = ("email", "name")


class AdminUserChangeForm(_EmailUniqueMixin, UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
