import factory

from apps.contacts.models import Contact


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    phone = factory.Sequence(lambda n: f"+4477009{n:05d}")
    wa_id = factory.LazyAttribute(lambda o: o.phone[1:] if o.phone else "")
    name = factory.Sequence(lambda n: f"Person {n}")
