"""Red-flag detection with NegEx/ConText context."""

import csv

import pytest

from responder.dialogue.respond import Responder
from responder.nlu.evaluation import CAUGHT, URGENT
from responder.nlu.redflags import SignHit
from tests.conftest import DATA


def _hits(responder: Responder, text: str) -> list[SignHit]:
    """The signs the rules find in a message, with their context status."""
    return responder.matcher.reader.read(text)[1]


def _cases() -> list[tuple[str, str]]:
    with (DATA / "redflag_cases.tsv").open(encoding="utf-8", newline="") as handle:
        return [(r["expected"], r["text"]) for r in csv.DictReader(handle, delimiter="\t")]


@pytest.mark.parametrize(("expected", "text"), _cases())
def test_red_flag_detection(responder: Responder, expected: str, text: str) -> None:
    """A sign is caught (the urgent reply or the check question); a non-sign is never urgent."""
    match = responder.matcher.match(text)
    if expected == "fire":
        assert match.care in CAUGHT, match
    else:
        assert match.care not in URGENT, match


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("cramp but no swelling", "negated"),
        ("no swelling, but now it is swollen", "present"),
        ("had a blood clot 5 years ago", "historical"),
        ("my wife s calf is swollen, mine is only tight", "other_person"),
        ("my knee is swollen", "other_body_part"),
        ("i cannot stand on my toes", "present"),
        ("pt's father had a dvt, pt only tight after runs", "historical"),
        ("mi papa tuvo trombosis, yo solo tengo la pantorrilla tensa", "historical"),
        ("calf maybe a bit puffy after the long run, hard to tell", "uncertain"),
        ("no se si esta hinchada o son ideas mias", "uncertain"),
        ("my calf is slightly swollen and warm", "present"),
        ("my dog's leg is swollen after our run", "other_person"),
        ("a mi perro se le hincho la pata", "other_person"),
        ("hx of dvt, c/o new calf swelling", "present"),
        ("it's not a cramp, it's swollen", "present"),
        ("calf a bit puffy? not sure", "uncertain"),
        ("Pt c/o calf tightness, ?mild swelling", "uncertain"),
        ("dark urine? no, pee is normal", "negated"),
        ("swelling? none. just tight", "negated"),
        ("my calf is swollen and red?? help", "present"),
        ("my calf is swollen and red. what do i do?", "present"),
        ("is my left calf a bit swollen?", "uncertain"),
        ("short of breath on the hill but fine after a minute", "historical"),
        ("tenia dificultad para respirar en la subida pero ya se me paso", "historical"),
        ("calf swelling has not gone down since yesterday", "present"),
        ("is my calf swollen or am i paranoid", "uncertain"),
        ("tengo la pantorrilla hinchada o estoy paranoica", "uncertain"),
        ("mi perro cojea y tiene la pata hinchada", "other_person"),
        ("my dog is limping and my calf is swollen", "present"),
        ("Chest pain: no. Calf swelling: none.", "negated"),
        ("28F, denies CP, +R calf swelling", "present"),
        ("pte refiere no poder apoyar el pie", "present"),
        # 'Nada' opening a turn is a filler, not a negation of what follows.
        ("eh nada, le hablaba porque me duele la pantorrilla desde que volvi del viaje",
         "present"),
        # A sign tied to every run or walk is the chronic pattern safety.md puts at T3.
        ("whenever i run my foot goes numb after 3 miles", "historical"),
        ("cada semana al correr se me duerme el pie", "historical"),
        # "Just", "only", "solamente" open the positive half of a sentence.
        ("no chest pain or anything just my calf is swollen since the flight", "present"),
        ("no me duele el pecho ni nada solamente la pantorrilla hinchada", "present"),
    ],
)
def test_context_status(responder: Responder, text: str, status: str) -> None:
    hits = _hits(responder, text)
    assert status in {h.status for h in hits}


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("it is not easing, and it is swollen", "present"),
        ("not sore. swollen though", "present"),
        ("no pain, swelling or redness", "negated"),
        ("no swelling and no redness", "negated"),
        ("it isnt getting better and now its red and hot", "present"),
        ("pt denies CP, SOB, hemoptysis", "negated"),
        ("no swelling, warmth, redness or numbness, just tight", "negated"),
    ],
)
def test_negation_ends_at_the_clause(responder: Responder, text: str, status: str) -> None:
    """NegEx scope stops at a comma, full stop or "and", unless a list of signs follows."""
    hits = _hits(responder, text)
    assert hits and {h.status for h in hits} == {status}, hits


def test_red_flag_wins_over_other_intents(responder: Responder) -> None:
    match = responder.matcher.match("can i take advil, my calf is swollen and hot")
    assert match.intent == "red_flag"
    assert match.runner_up is not None and match.runner_up != "red_flag"


@pytest.mark.parametrize(("text", "care"), [
    ("calf maybe a bit puffy after the long run, hard to tell", "check"),
    ("creo que tengo la pantorrilla un poco hinchada pero no estoy seguro", "check"),
    ("maybe chest pain and i cant catch my breath", "emergency"),
    ("my calf is slightly swollen and warm since the flight", "urgent"),
])
def test_a_sign_the_sender_is_unsure_of_gets_the_check_question(
        responder: Responder, text: str, care: str) -> None:
    """The contract's check: a possible sign, neither clearly present nor absent. Chest
    pain and breathing trouble are never a maybe."""
    assert responder.matcher.match(text).care == care


@pytest.mark.parametrize(
    "text",
    [
        "no swelling, no redness, no heat, calf just tight after the long run",
        "Pt follow-up. Chest pain: no. SOB: no. Calf swelling: none. Tight after runs",
        "sin hinchazon ni calor ni enrojecimiento, solo los gemelos cargados",
    ],
)
def test_signs_read_away_ask_no_check(responder: Responder, text: str) -> None:
    """Sign words the rules read as negated are no reason for the check question, even
    when the words-only model, which cannot read the negation, is alarmed."""
    match = responder.matcher.match(text)
    assert match.care not in CAUGHT, match



# The safety reference's lay words for stroke, a break, PAD rest pain, cauda equina and
# heatstroke, and everyday phrases that share their words.
@pytest.mark.parametrize(("text", "sign"), [
    ("all of a sudden my left side feels weak, arm and leg", "one_sided_weakness"),
    ("his face is drooping on one side and he can't lift his leg", "one_sided_weakness"),
    ("de repente se me debilito el lado derecho, brazo y pierna", "one_sided_weakness"),
    ("fell off the wall and my ankle is pointing the wrong way", "deformity"),
    ("heard a crack and now my shin looks kind of crooked", "deformity"),
    ("me cai y el tobillo se ve chueco", "deformity"),
    ("known claudication, now the calf aches even lying in bed at night", "rest_pain"),
    ("pt with PAD, new rest pain R calf", "rest_pain"),
    ("ahora tengo dolor en reposo en la pantorrilla", "rest_pain"),
    ("my bum has gone numb and i can't hold my pee", "cauda_equina"),
    ("the pain is so bad i can hardly think, calf tight as a drum", "compartment"),
    ("she is not making any sense and keeps staggering after the hot 10k",
     "heat_illness_or_confusion"),
    ("my brother had a fit at the finish line in the heat", "heat_illness_or_confusion"),
    ("temperature of 40 after the race and calves cramping", "heat_illness_or_confusion"),
    ("cramping in my hands and belly as well as my calves", "cramps_beyond_legs"),
])
def test_new_lay_signs(responder: Responder, text: str, sign: str) -> None:
    """Each is found, whoever's it is (status aside)."""
    hits = _hits(responder, text)
    assert sign in {hit.name for hit in hits}


@pytest.mark.parametrize(("text", "sign"), [
    ("keep your back leg bent in the second stretch", "deformity"),
    ("do the wall stretch with the knee bent", "deformity"),
    ("claudication pain comes on at 200m and stops at rest", "rest_pain"),
    ("had a fit of laughter at the finish", "heat_illness_or_confusion"),
    ("do these shoes fit wide feet", "heat_illness_or_confusion"),
    ("my left side stitch came back during the tempo run", "one_sided_weakness"),
    ("stomach cramps from the gels at mile 20", "cramps_beyond_legs"),
    ("el dolor se me quita en reposo", "rest_pain"),
])
def test_lay_sign_look_alikes(responder: Responder, text: str, sign: str) -> None:
    """Everyday phrases that share a sign's words are not that sign."""
    hits = _hits(responder, text)
    assert sign not in {hit.name for hit in hits}


@pytest.mark.parametrize(("text", "status"), [
    ("pt c/o L knee swelling after a fall, no calf involvement", "other_body_part"),
    ("my knee is swollen and hot after the fall, calves fine", "other_body_part"),
    ("my leg below the knee is swollen on one side", "present"),
    ("swelling behind my knee and down into my calf", "present"),
    ("my knee and calf are swollen", "present"),
])
def test_a_leg_sign_belongs_to_the_part_next_to_it(
        responder: Responder, text: str, status: str) -> None:
    hits = _hits(responder, text)
    assert {h.status for h in hits if h.name == "swelling"} == {status}


def test_cauda_equina_counts_in_a_message_about_the_back(responder: Responder) -> None:
    """Lost bladder control is the sender's emergency even when only the back is named."""
    match = responder.matcher.match("my lower back hurts and i cant control my bladder")
    assert match.care == "emergency", match


@pytest.mark.parametrize(("text", "sign"), [
    ("no siento nada en la entrepierna y no puedo orinar", "cauda_equina"),
    ("niega dolor toracico, disnea y no puede caminar", "cannot_walk"),
    ("no swelling and cannot walk on it", "cannot_walk"),
])
def test_a_sign_with_its_own_negation_starts_a_new_statement(
        responder: Responder, text: str, sign: str) -> None:
    """A negation before it does not reach through "and": denying one sign and saying
    "can't walk" is not denying both."""
    hits = _hits(responder, text)
    assert {h.status for h in hits if h.name == sign} == {"present"}


@pytest.mark.parametrize(("text", "sign", "found"), [
    ("crushing feeling in my chest and my calf aches", "chest_pain", True),
    ("pte refiere expectoracion con sangre desde ayer", "cough_blood", True),
    ("coughing up phlegm with blood since the flight", "cough_blood", True),
    ("i can't stand foam rolling, other ways to loosen my calves?", "cannot_walk", False),
    ("i can't stand on my left leg since the pop", "cannot_walk", True),
    ("collapsed on the couch after the long run, calves wrecked", "heat_illness_or_confusion",
     False),
    ("he collapsed at the finish line", "heat_illness_or_confusion", True),
    ("estoy confundido con tanta informacion sobre estiramientos", "heat_illness_or_confusion",
     False),
    ("me ahogo en trabajo esta semana, no tengo tiempo de correr", "breathing", False),
])
def test_everyday_words_and_clinic_words(
        responder: Responder, text: str, sign: str, found: bool) -> None:
    """Clinic and lay words for emergency signs; idioms that share their words."""
    hits = _hits(responder, text)
    assert (sign in {h.name for h in hits}) is found


@pytest.mark.parametrize(("text", "found"), [
    ("a bit dizzy after my hot run, drinking water now", False),
    ("medio mareado despues de correr con calor, ya tome agua", False),
    ("still dizzy and sick 40 minutes after the race even in the shade", True),
    ("dizzy for over half an hour after the hot 10k", True),
    ("sigo mareada despues de 40 min en la sombra", True),
    ("i feel muddled and my calves are cramping in this heat", True),
])
def test_dizzy_is_heat_exhaustion_until_it_lasts(responder: Responder, text: str,
                                                 found: bool) -> None:
    """safety.md: dizzy with cramps is heat exhaustion (cool down, better within 30
    minutes); still unwell after 30 minutes, or confused, is heatstroke."""
    hits = _hits(responder, text)
    assert ("heat_illness_or_confusion" in {h.name for h in hits}) is found


@pytest.mark.parametrize(("text", "status"), [
    ("calf aches at mile 3 every run and sometimes my foot goes numb", "historical"),
    ("Pte refiere parestesias intermitentes en pie al correr", "historical"),
    ("my foot went numb an hour ago and it still is", "present"),
    ("intermittent chest pain on my runs this week", "present"),
    ("had brownish pee after a hot race last summer, normal since", "historical"),
])
def test_a_sign_that_comes_and_goes_is_a_pattern_not_an_event(
        responder: Responder, text: str, status: str) -> None:
    """Numbness with each run is exertional compartment syndrome's (safety.md: see a GP
    soon); a sign that fires alone is never read that way."""
    hits = _hits(responder, text)
    assert status in {h.status for h in hits}


@pytest.mark.parametrize(("text", "care"), [
    ("calf a bit puffy? after the flight, maybe just tight", "check"),
    ("calf tight after the flight but not swollen, not warm, both legs the same", "check"),
    ("calf aches even lying down since the long flight home", "urgent"),
    ("my calf is swollen since the flight", "urgent"),
])
def test_a_risk_context_follows_the_symptom_signs(
        responder: Responder, text: str, care: str) -> None:
    """A flight is DVT's risk context: urgent with a calf sign or on its own, asked
    about when the symptom signs are all doubted or denied."""
    assert responder.matcher.match(text).care == care


def test_no_new_swelling_is_a_negation(responder: Responder) -> None:
    hits = _hits(responder, "hx dvt 2020, calf achy most evenings, no new swelling")
    assert {h.status for h in hits if h.name == "swelling"} == {"negated"}


@pytest.mark.parametrize(("text", "found"), [
    ("el pis me salio mas oscuro de lo normal despues de la tirada larga", False),
    ("la orina me salio oscura como coca despues del maraton", True),
])
def test_darker_than_usual_pee_is_not_the_cola_colour(responder: Responder, text: str,
                                                      found: bool) -> None:
    hits = _hits(responder, text)
    assert ("dark_urine" in {h.name for h in hits}) is found
