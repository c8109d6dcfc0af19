from django.urls import path
from django.views.generic import RedirectView

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.account, name="account"),
    path("email/", views.email_change, name="email_change"),
    path("email/cancel/", views.email_change_cancel, name="email_change_cancel"),
    path("email/confirm/<str:token>/", views.email_change_confirm, name="email_change_confirm"),
    path("delete/", views.account_delete, name="account_delete"),
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    # The address people guess for the page above.
    path("password/change/", RedirectView.as_view(pattern_name="accounts:password_change")),
    path("password/done/", views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/sent/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password/reset/done/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
