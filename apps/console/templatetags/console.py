from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_active(context, prefix: str) -> str:
    request = context.get("request")
    path = getattr(request, "path", "") or ""
    return "active" if path.startswith(prefix) else ""
