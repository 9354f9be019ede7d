"""A notice (`streams/notices.py`) as a lake row: the shared columns filled with what each
type has that fits them, everything else in `content` and `raw`."""

from __future__ import annotations

from typing import Any

from streams.notices import (
    AccountUpdateContent,
    CallContent,
    EchoContent,
    NoticeEvent,
    PreferencesContent,
    ProviderErrorContent,
    TemplateStatusContent,
)


def notice_columns(notice: NoticeEvent) -> dict[str, Any]:
    """`message_id`, `status`, `text` and the error columns of a notice's row:

    - template.status: the template id, the event (or new quality / category), its name;
    - account.update: -, the event, the violation type;
    - contact.preferences: -, `stop`/`resume`, the category;
    - provider.error: -, -, the title, with the error code and title;
    - call.*: the call id, the call status, the direction;
    - message.echo: the message id, -, the text body or caption.
    """
    content = notice.content
    columns: dict[str, Any] = {"kind": "notice", "message_id": None, "status": None,
                               "text": None}
    if isinstance(content, TemplateStatusContent):
        columns.update(message_id=content.template_id,
                       status=content.event or content.new_quality or content.new_category,
                       text=content.template_name)
    elif isinstance(content, AccountUpdateContent):
        columns.update(status=content.event, text=content.violation_type)
    elif isinstance(content, PreferencesContent):
        columns.update(status=content.value, text=content.category)
    elif isinstance(content, ProviderErrorContent):
        columns.update(text=content.error.title, error_code=content.error.code,
                       error_title=content.error.title)
    elif isinstance(content, CallContent):
        columns.update(message_id=content.call_id, status=content.status,
                       text=content.direction)
    elif isinstance(content, EchoContent):
        body = content.message.get("body") or content.message.get("caption")
        columns.update(message_id=content.message_id,
                       text=body if isinstance(body, str) else None)
    return columns
