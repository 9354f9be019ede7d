"""Who an event is about: the contact's ids (number, `wa_id`, business-scoped user ids,
username) and the group, read from Meta's `contacts[]`, message and status objects (Qikchat's
`payload.contacts[0]` and `payload.message` copy them).

Every field is optional: a value of the wrong type is left out, and a contact identified
only by a business-scoped user id (no `from`, no `wa_id`) has a user id and no number.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.events import Group
from streams.parsers.json_fields import JSONObject, array, e164, nonempty, obj, text


@dataclass(frozen=True, slots=True)
class Contact:
    """One customer's ids, as far as the body names them."""

    number: str | None = None
    name: str | None = None
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None

    @classmethod
    def of_entry(cls, entry: JSONObject) -> Contact:
        """An entry of `contacts[]`: the number (Qikchat's `to`, else `wa_id`), `wa_id`,
        `user_id`, `parent_user_id`, `profile.name` and `profile.username`."""
        profile = obj(entry, "profile") or {}
        return cls(
            number=e164(entry.get("to")) or e164(entry.get("wa_id")),
            name=nonempty(profile.get("name")),
            wa_id=nonempty(entry.get("wa_id")),
            user_id=nonempty(entry.get("user_id")),
            parent_user_id=nonempty(entry.get("parent_user_id")),
            username=nonempty(profile.get("username")) or nonempty(entry.get("username")),
        )

    def fields(self) -> dict[str, str | None]:
        """The event fields (`contact_number`, ...) of this contact."""
        return {"contact_number": self.number, "contact_name": self.name,
                "contact_wa_id": self.wa_id, "contact_user_id": self.user_id,
                "contact_parent_user_id": self.parent_user_id,
                "contact_username": self.username}


NO_CONTACT = Contact()


class Contacts:
    """A change's `contacts[]`, found by number or by business-scoped user id."""

    def __init__(self, value: JSONObject) -> None:
        self._entries = [Contact.of_entry(entry) for entry in array(value, "contacts")
                         if isinstance(entry, dict)]

    def find(self, number: str | None, user_id: str | None) -> Contact:
        """The entry of `number`, else of `user_id`; when the item names neither, the only
        entry there is (a message without `from` and one contact)."""
        for entry in self._entries:
            if number is not None and entry.number == number:
                return entry
        for entry in self._entries:
            if user_id is not None and entry.user_id == user_id:
                return entry
        if number is None and user_id is None and len(self._entries) == 1:
            return self._entries[0]
        return NO_CONTACT


def message_contact(message: JSONObject, contacts: Contacts) -> Contact:
    """The sender of a Meta message: `from` and `from_user_id`, completed by its entry of
    `contacts[]`."""
    return _completed(contacts, message.get("from"), message.get("from_user_id"),
                      message.get("from_parent_user_id"))


def status_contact(status: JSONObject, contacts: Contacts) -> Contact:
    """The recipient of a status (`recipient_id`, `recipient_user_id`); nobody for a status
    of a message sent to a group (the group is `status_group`)."""
    if is_group_status(status):
        return NO_CONTACT
    return _completed(contacts, status.get("recipient_id"), status.get("recipient_user_id"),
                      status.get("recipient_parent_user_id"))


def _completed(contacts: Contacts, wa_id: object, user_id: object,
               parent_user_id: object) -> Contact:
    """The ids an item names, each completed by the item's entry of `contacts[]`."""
    number, user = e164(wa_id), nonempty(user_id)
    entry = contacts.find(number, user)
    return Contact(
        number=number or entry.number,
        name=entry.name,
        wa_id=nonempty(wa_id) or entry.wa_id,
        user_id=user or entry.user_id,
        parent_user_id=nonempty(parent_user_id) or entry.parent_user_id,
        username=entry.username,
    )


def message_group(message: JSONObject, sender: Contact) -> Group | None:
    """The group of a group message (`group_id`); its participant is the sender."""
    group_id = nonempty(message.get("group_id"))
    if group_id is None:
        return None
    return Group(id=group_id, participant_number=sender.number,
                 participant_wa_id=sender.wa_id, participant_user_id=sender.user_id,
                 participant_parent_user_id=sender.parent_user_id)


def is_group_status(status: JSONObject) -> bool:
    return text(status.get("recipient_type")) == "group"


def status_group(status: JSONObject) -> Group | None:
    """The group of a status of a message sent to a group (`recipient_type: group`): the
    group is `recipient_id` (or `group_id`), the participant `recipient_participant_*`."""
    if not is_group_status(status):
        return None
    group_id = nonempty(status.get("group_id")) or nonempty(status.get("recipient_id"))
    if group_id is None:
        return None
    participant = status.get("recipient_participant_id")
    return Group(
        id=group_id, participant_number=e164(participant),
        participant_wa_id=nonempty(participant),
        participant_user_id=nonempty(status.get("recipient_participant_user_id")),
        participant_parent_user_id=nonempty(status.get("recipient_participant_parent_user_id")),
    )


def group_status_event_id(event_id: str, group: Group | None) -> str:
    """A group status's event id names the participant: each participant's `read` of one
    message is a status of its own, not a copy of the first."""
    if group is None:
        return event_id
    participant = group.participant_user_id or group.participant_wa_id
    return f"{event_id}:{participant}" if participant else event_id
