"""Panel forms (validation errors are shown next to their field by the templates)."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils.translation import gettext_lazy as _

from retention_app.panel.models import PanelSettings


class PeriodForm(forms.Form):
    # <input type=date> takes ISO dates whatever the language.
    start = forms.DateField(
        label=_("From"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    end = forms.DateField(
        label=_("Until (excluded)"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    window_days = forms.IntegerField(
        label=_("Activity window (days)"), min_value=1, max_value=3660, required=False
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end <= start:
            self.add_error("end", _("The end must be after the start."))
        if start and end and (end - start) > dt.timedelta(days=3660):
            self.add_error("end", _("The period may be at most ten years long."))
        return data


class PanelSettingsForm(forms.ModelForm):
    activity_window_days = forms.IntegerField(
        label=_("Activity window W (days)"),
        min_value=1,
        max_value=3660,
        help_text=_("A customer is active when they ordered within the last W days."),
    )

    class Meta:
        model = PanelSettings
        fields = ["north_star_metric", "vip_share_percent"]
        labels = {
            "north_star_metric": _("North Star metric (pinned at the top of the dashboard)"),
            "vip_share_percent": _("VIP customers: top share by spend (%)"),
        }


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("Token name"), max_length=100)


class LoginForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput)
