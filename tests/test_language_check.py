"""`analysis.language_check`: script dominance by words, evidence among languages sharing a script.

Every case below is a realistic assistant reply. The evidence lists are in
``livekit_lab/analysis/languages.toml``; the rule is in ``livekit_lab/analysis/language.py``.
On the real API the transcript is the service's output transcription (`outputTranscription`,
free text in the reply language), not the emulator's phrase bank, so the check must hold on
text it has never seen; the cross-language matrices below are the guard. That transcription can
itself switch language or script (livekit/livekit#4338: non-English output transcripts with
language="en-US"; google-gemini/gemini-live-api-examples#45: Arabic in Latin transliteration), which
is why a transliterated reply must fail on its script with a reason naming what was seen.
"""

from __future__ import annotations

import itertools

import pytest

from livekit_lab import catalog, stimuli
from livekit_lab.analysis import language, scores
from livekit_lab.analysis.language import language_check
from livekit_lab.emulator import responder

#: One reply per language of every shared-script group, the same meaning in each.
REPLIES = {
    "en": "Of course! I can help you with that. What time would you like to meet?",
    "es": "¡Claro! Te puedo ayudar con eso. ¿A qué hora quieres que nos veamos?",
    "pt": "Claro! Posso ajudar você com isso. A que horas você quer se encontrar?",
    "it": "Certo! Posso aiutarti con questo. A che ora vuoi che ci vediamo?",
    "fr": "Bien sûr ! Je peux vous aider avec ça. À quelle heure voulez-vous qu'on se voie ?",
    "de": "Natürlich! Ich kann dir dabei helfen. Um wie viel Uhr möchtest du dich treffen?",
    "nl": "Natuurlijk! Ik kan je daarmee helpen. Hoe laat wil je afspreken?",
    "ro": "Sigur! Te pot ajuta cu asta. La ce oră vrei să ne întâlnim?",
    "pl": "Oczywiście! Mogę ci w tym pomóc. O której godzinie chcesz się spotkać?",
    "tr": "Tabii ki! Bu konuda sana yardımcı olabilirim. Saat kaçta buluşmak istersin?",
    "id": "Tentu saja! Saya bisa membantu Anda dengan itu. Jam berapa Anda ingin bertemu?",
    "vi": "Tất nhiên rồi! Tôi có thể giúp bạn việc đó. Bạn muốn gặp lúc mấy giờ?",
    "ru": "Конечно! Я могу вам с этим помочь. Во сколько вы хотите встретиться?",
    "uk": "Звісно! Я можу вам із цим допомогти. О котрій годині ви хочете зустрітися?",
    "hi": "ज़रूर! मैं इसमें आपकी मदद कर सकता हूँ। आप कितने बजे मिलना चाहेंगे?",
    "mr": "नक्कीच! मी तुम्हाला यात मदत करू शकतो. तुम्हाला किती वाजता भेटायला आवडेल?",
    "zh": "当然可以！我可以帮你做这件事。你想几点见面？",
    "ja": "もちろんです！そのお手伝いができます。何時に会いたいですか？",
}

#: Three more replies per language: sympathy, a forecast with a name and a number, an English term.
MORE = {
 "en": ["I'm sorry to hear that. It sounds like a really tough day. Would you like to talk about it?",
        "The weather in Paris tomorrow will be sunny with a high of 22 degrees.",
        "Great question! Python is a programming language that is easy to learn."],
 "es": ["Lo siento mucho. Parece que ha sido un día muy difícil. ¿Quieres hablar de ello?",
        "Mañana en París hará sol, con una máxima de 22 grados.",
        "¡Buena pregunta! Python es un lenguaje de programación fácil de aprender."],
 "pt": ["Sinto muito por isso. Parece que foi um dia muito difícil. Você quer conversar sobre isso?",
        "Amanhã em Paris vai fazer sol, com máxima de 22 graus.",
        "Ótima pergunta! Python é uma linguagem de programação fácil de aprender."],
 "it": ["Mi dispiace molto. Sembra che sia stata una giornata davvero difficile. Vuoi parlarne?",
        "Domani a Parigi ci sarà il sole, con una massima di 22 gradi.",
        "Ottima domanda! Python è un linguaggio di programmazione facile da imparare."],
 "fr": ["Je suis désolé d'entendre ça. On dirait que la journée a été très difficile. Voulez-vous en parler ?",
        "Demain à Paris, il fera beau avec une température maximale de 22 degrés.",
        "Bonne question ! Python est un langage de programmation facile à apprendre."],
 "de": ["Das tut mir leid. Es klingt, als wäre es ein wirklich harter Tag gewesen. Möchtest du darüber reden?",
        "Morgen wird es in Paris sonnig bei höchstens 22 Grad.",
        "Gute Frage! Python ist eine Programmiersprache, die leicht zu lernen ist."],
 "nl": ["Wat vervelend om te horen. Het klinkt als een heel zware dag. Wil je erover praten?",
        "Morgen wordt het zonnig in Parijs met een maximumtemperatuur van 22 graden.",
        "Goede vraag! Python is een programmeertaal die makkelijk te leren is."],
 "ro": ["Îmi pare rău să aud asta. Pare că a fost o zi foarte grea. Vrei să vorbim despre asta?",
        "Mâine la Paris va fi soare, cu o maximă de 22 de grade.",
        "Bună întrebare! Python este un limbaj de programare ușor de învățat."],
 "pl": ["Przykro mi to słyszeć. Brzmi to jak naprawdę ciężki dzień. Chcesz o tym porozmawiać?",
        "Jutro w Paryżu będzie słonecznie, maksymalnie 22 stopnie.",
        "Dobre pytanie! Python to język programowania, którego łatwo się nauczyć."],
 "tr": ["Bunu duyduğuma üzüldüm. Gerçekten zor bir gün geçirmişsin gibi görünüyor. Bunun hakkında konuşmak ister misin?",
        "Yarın Paris'te hava güneşli olacak, en yüksek sıcaklık 22 derece.",
        "Güzel soru! Python öğrenmesi kolay bir programlama dilidir."],
 "id": ["Saya turut prihatin mendengarnya. Sepertinya hari ini sangat berat. Apakah kamu ingin membicarakannya?",
        "Besok di Paris akan cerah dengan suhu tertinggi 22 derajat.",
        "Pertanyaan bagus! Python adalah bahasa pemrograman yang mudah dipelajari."],
 "vi": ["Tôi rất tiếc khi nghe điều đó. Có vẻ như hôm nay là một ngày thật khó khăn. Bạn có muốn nói về nó không?",
        "Ngày mai ở Paris trời nắng, nhiệt độ cao nhất 22 độ.",
        "Câu hỏi hay! Python là một ngôn ngữ lập trình dễ học."],
 "ru": ["Мне очень жаль это слышать. Похоже, день был действительно тяжёлым. Хотите поговорить об этом?",
        "Завтра в Париже будет солнечно, до 22 градусов.",
        "Хороший вопрос! Python — это язык программирования, который легко выучить."],
 "uk": ["Мені дуже шкода це чути. Схоже, день був справді важким. Хочете поговорити про це?",
        "Завтра в Парижі буде сонячно, до 22 градусів.",
        "Гарне питання! Python — це мова програмування, яку легко вивчити."],
 "hi": ["यह सुनकर मुझे बहुत दुख हुआ। लगता है आज का दिन सच में बहुत मुश्किल था। क्या आप इसके बारे में बात करना चाहेंगे?",
        "कल पेरिस में धूप रहेगी और अधिकतम तापमान 22 डिग्री रहेगा।",
        "अच्छा सवाल! Python एक प्रोग्रामिंग भाषा है जिसे सीखना आसान है।"],
 "mr": ["हे ऐकून मला खूप वाईट वाटलं. आजचा दिवस खरंच खूप कठीण होता असं दिसतं. तुम्हाला याबद्दल बोलायचं आहे का?",
        "उद्या पॅरिसमध्ये ऊन असेल आणि कमाल तापमान 22 अंश असेल.",
        "छान प्रश्न! Python ही शिकायला सोपी प्रोग्रामिंग भाषा आहे."],
 "zh": ["听到这个消息我很难过。看起来今天真的很辛苦。你想聊聊吗？",
        "明天巴黎晴天，最高气温22度。",
        "好问题！Python 是一种容易学习的编程语言。"],
 "ja": ["それを聞いてとても残念です。本当に大変な一日だったようですね。お話ししたいですか？",
        "明日のパリは晴れで、最高気温は22度です。",
        "いい質問ですね！Python は学びやすいプログラミング言語です。"],
}

PAIRS = [(a, b) for members in language.groups().values() for a, b in itertools.permutations(members, 2)]


def test_the_groups_are_the_catalog_languages_that_share_a_script():
    by_script: dict[str, set[str]] = {}
    for lang in catalog.languages():
        by_script.setdefault("Han" if lang.script == "Kana" else lang.script, set()).add(lang.code)
    for script, members in language.groups().items():
        assert set(members) == by_script[script], script
    assert {s for s, m in by_script.items() if len(m) > 1} == set(language.groups())


@pytest.mark.parametrize("code", sorted(REPLIES))
def test_each_reply_passes_its_own_language(code):
    r = language_check(REPLIES[code], language=code)
    assert (r.ok, r.script_ok, r.stopword_language) == (True, True, code), r.reason


@pytest.mark.parametrize(("written", "asked"), PAIRS, ids=[f"{a}-as-{b}" for a, b in PAIRS])
def test_a_reply_fails_every_other_language_of_its_script(written, asked):
    r = language_check(REPLIES[written], language=asked)
    assert r.script_ok is True and r.ok is False, r.reason
    assert r.stopword_language == written and written in r.reason


@pytest.mark.parametrize("written", sorted(MORE))
def test_more_replies_pass_their_own_language_and_fail_the_rest_of_their_script(written):
    group = next(m for m in language.groups().values() if written in m)
    for text in MORE[written]:
        for asked in group:
            r = language_check(text, language=asked)
            assert r.ok is (asked == written), (text, asked, r.reason)


def test_italian_with_u_grave_is_not_french():
    # ù is Italian (più, giù) and Vietnamese as well as French (où): it splits its weight 2/3 each
    fr = language_check("Certo, più tardi.", language="fr")
    it = language_check("Certo, più tardi.", language="it")
    assert (fr.ok, it.ok) == (False, True)
    assert it.evidence["it"] == pytest.approx(1 + 2 / 3, abs=1e-6)  # "più" + ù
    assert it.evidence["fr"] == it.evidence["vi"] == pytest.approx(2 / 3, abs=1e-6)


def test_brand_names_inside_chinese_count_as_words_not_letters():
    text = "你可以在 iPhone 和 Android 上使用这个应用。"  # 13 Latin letters, 12 Han characters
    prof = language.script_profile(text)
    assert prof.units == {"Han": 12, "Latin": 2} and prof.dominant == "Han" and prof.letters == 25
    r = language_check(text, language="zh")
    assert r.ok is True and r.detected_script == "Han"
    assert language_check(text, language="en").ok is False


def test_kanji_only_japanese_passes_ja_and_fails_zh():
    text = "東京駅午後三時集合。"  # no kana: 駅 is the Japanese (shinjitai) form; Chinese writes 站
    assert language.script_profile(text).units == {"Han": 9}
    ja, zh = language_check(text, language="ja"), language_check(text, language="zh")
    assert (ja.ok, zh.ok) == (True, False)
    assert ja.evidence == {"zh": 0.0, "ja": 2.0}  # 駅 alone: 2 / 1
    # the iteration mark is Japanese too
    assert language_check("人々が集合。", language="ja").ok is True
    # kanji that both write: the evidence cannot tell
    for code in ("ja", "zh"):
        r = language_check("了解。", language=code)
        assert r.ok is None and "no word or letter" in r.reason


def test_japanese_with_kana_particles_is_not_chinese():
    assert language_check("それは大変でしたね。", language="ja").ok is True
    assert language_check("それは大変でしたね。", language="zh").ok is False
    assert language_check("很抱歉听到这个消息。", language="ja").ok is False


def test_ukrainian_is_not_russian_and_marathi_is_not_hindi():
    for text, own, other in (("Дякую, я вас почув. Дайте мені хвилинку подумати.", "uk", "ru"),
                             ("Спасибо, я вас услышал. Дайте мне подумать минутку.", "ru", "uk"),
                             ("ठीक आहे, हे समजण्यासारखं आहे. तुम्हाला पुढे काय करायचं आहे?", "mr", "hi"),
                             ("ठीक है, यह समझ में आता है। आप आगे क्या करना चाहेंगे?", "hi", "mr")):
        assert language_check(text, language=own).ok is True, text
        assert language_check(text, language=other).ok is False, text


def test_mixed_reply_english_greeting_before_spanish():
    text = "Hi there! Claro, te ayudo con eso. ¿Qué necesitas?"
    es, en = language_check(text, language="es"), language_check(text, language="en")
    assert (es.ok, en.ok) == (True, False)
    assert en.evidence["en"] == 2  # "hi", "there"
    assert es.evidence["es"] > 2 and "points to es" in en.reason
    # without a Spanish letter: the words alone carry it (claro te con eso la y el = 7; hello = 1)
    text = "Hello! Claro, te ayudo con eso. Dime la hora y el lugar."
    es, en = language_check(text, language="es"), language_check(text, language="en")
    assert (es.ok, en.ok) == (True, False)
    assert (es.evidence["es"], es.evidence["en"]) == (7.0, 1.0)


def test_undecidable_replies_say_so_instead_of_guessing():
    r = language_check("Okay.", language="en")  # English and German both say it
    assert r.ok is None and r.matches is None and r.reason == "evidence ties en with de at 1"
    r = language_check("धन्यवाद!", language="mr")  # the same word in Hindi and Marathi
    assert r.ok is None and r.reason == "no word or letter tells mr from hi"
    r = language_check("OK 好", language="zh")  # one Latin word, one Han word
    assert r.script_ok is None and r.ok is None and "tie" in r.reason
    for empty in ("", "123 ?!"):
        r = language_check(empty, language="en")
        assert r.ok is None and r.reason == "no letters"


def test_a_transliterated_reply_fails_on_its_script():
    # google-gemini/gemini-live-api-examples#45: Arabic speech transcribed in Latin letters
    r = language_check("Ahlan, kayfa yumkinuni musaadatuka al-yawm?", language="ar")
    assert (r.script_ok, r.ok, r.method) == (False, False, "script")
    assert r.reason == "mostly Latin (6 words) vs Arabic 0" and r.detected_script == "Latin"


def test_other_scripts_are_checked_by_words_of_their_script():
    assert language_check("Мне очень жаль.", language="en").ok is False
    r = language_check("정말 힘드셨겠어요.", language="ko")
    assert (r.ok, r.method) == (True, "script")
    assert language_check("很抱歉听到这个消息。", language="ko").ok is False  # hanja alone is not Korean
    assert language_check("สวัสดีครับ ยินดีที่ได้รู้จัก iPhone", language="th").ok is True  # 20 Thai letters = 5 units


def test_words_split_at_script_changes_and_elisions():
    assert language.words("iPhone和Android") == [("iphone", "Latin"), ("和", "Han"), ("android", "Latin")]
    assert language.words("C’est l'été.") == [("c'est", "Latin"), ("l'été", "Latin")]
    ev = language.evidence("C’est l'été.", group="Latin")  # c' + est + l' (fr), l' (it) and é, é, é
    assert ev["fr"] > ev["it"] > ev["en"] == 0


def test_emulator_phrase_bank_passes_its_own_language():
    """Every reply the emulator can say (neutral, empathetic, lively, frame descriptions)."""
    n = 0
    for lang in catalog.languages():
        bank = responder.phrases().get(lang.code)
        assert bank is not None, lang.code
        texts = bank["neutral"] + bank["empathetic"] + bank["lively"]
        if "see" in bank:
            texts += [bank["see"].format(color=c, brightness=b) for c in bank["colors"].values()
                      for b in bank["brightness"].values()]
        for t in texts:
            r = language_check(t, language=lang.code)
            assert r.ok is True, (lang.code, t, r.reason)
            n += 1
    assert n > 24 * 7


def test_stimulus_texts_pass_and_the_old_names_still_work():
    for code in stimuli.LANGUAGES:
        assert scores.language_check(stimuli.TEXTS[code], language=code).matches is True, code
    assert scores.LanguageCheck is language.LanguageCheck


def test_reachable_as_analysis_language_check():
    from livekit_lab import analysis

    assert analysis.language_check is language_check and analysis.LanguageCheck is language.LanguageCheck
