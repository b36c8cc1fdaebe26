"""Browser sign-in for the inbox and admin: login, logout, workspace and live/sandbox switch.
Django's session auth: CSRF on every form, cookies Secure in production (settings)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.core.selectors import SESSION_SANDBOX_KEY, SESSION_WORKSPACE_KEY, memberships_for_user


def _next_url(request, default: str = "/inbox/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or default
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return target
    return default


@require_POST
@login_required
def workspace_switch(request):
    """Choose the workspace (only one the user is a member of) for this browser session."""
    wanted = request.POST.get("workspace_id", "")
    if memberships_for_user(user=request.user).filter(workspace_id=wanted).exists():
        request.session[SESSION_WORKSPACE_KEY] = wanted
        request.session[SESSION_SANDBOX_KEY] = False
    return HttpResponseRedirect(_next_url(request))


@require_POST
@login_required
def sandbox_toggle(request):
    request.session[SESSION_SANDBOX_KEY] = request.POST.get("sandbox") in ("1", "true", "on")
    return HttpResponseRedirect(_next_url(request))


def home(request):
    return HttpResponseRedirect("/inbox/" if request.user.is_authenticated else "/login/")


urlpatterns = [
    path("", home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="registration/login.html",
                                                redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # An invited person (core.services.member_invite) chooses a password here.
    path("reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(
        template_name="registration/set_password.html", success_url="/reset/done/"), name="password_reset_confirm"),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(
        template_name="registration/set_password_done.html"), name="password_reset_complete"),
    path("workspace/switch", workspace_switch, name="workspace-switch"),
    path("workspace/sandbox", sandbox_toggle, name="workspace-sandbox"),
]
