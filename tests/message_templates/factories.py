import factory

from apps.message_templates.models import MessageTemplate
from apps.wabas.models import Waba


class WabaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Waba

    meta_waba_id = factory.Sequence(lambda n: f"10{n:08d}")
    name = factory.Sequence(lambda n: f"WABA {n}")
    is_simulated = True


class TemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageTemplate

    workspace = factory.SelfAttribute("waba.workspace")
    name = factory.Sequence(lambda n: f"template_{n}")
    language = "en_US"
    category = "UTILITY"
    status = "APPROVED"
    meta_template_id = factory.Sequence(lambda n: f"9{n:08d}")
    components = factory.LazyFunction(lambda: [
        {"type": "BODY", "text": "Hello {{1}}, your order {{2}} has shipped.",
         "example": {"body_text": [["Ann", "A-1"]]}},
    ])
