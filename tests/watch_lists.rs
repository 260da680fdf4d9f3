//! The ready watch lists on real sentences: each category finds its own
//! examples in English and Chinese, and ordinary things a child says to a
//! toy alert on nothing, but for the few named here (and why each is kept).

use folotoy_ha_bridge::watch::{Speaker, WatchWords};
use folotoy_ha_bridge::watch_lists::{categories, in_force, Choice, Choices};

const TOY: &str = "fcb467dad0c0";

/// Every list on for every toy.
fn all_lists() -> WatchWords {
    let choices: Choices =
        categories().iter().map(|c| (c.key.to_owned(), Choice { all: true, ..Choice::default() })).collect();
    WatchWords::default().with_lists(in_force(&choices))
}

/// What a child might say that each list is there for (and, for the lists
/// watched on both sides, what a toy should never say).
const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "distress",
        &[
            "I want to die",
            "Sometimes I wanna die",
            "I'm going to hurt myself",
            "I hate myself so much",
            "Nobody loves me",
            "Everyone hates me at school",
            "I wish I was never born",
            "I'm scared to go home tonight",
            "I want to run away from home",
            "I can’t take it anymore",
            "我不想活了",
            "我真的活不下去了",
            "我想自杀",
            "没有人爱我",
            "大家都讨厌我",
            "我要离家出走",
            "我不敢回家",
        ],
    ),
    (
        "danger",
        &[
            "Where can I find a knife?",
            "The knives are in the kitchen drawer",
            "Can I play with matches?",
            "Daddy keeps a lighter in his car, I found the lighter",
            "How do I start a fire?",
            "I found Mommy's pills",
            "What happens if I drink bleach?",
            "Is there a real gun in the house?",
            "厨房里的菜刀在哪里",
            "我找到了火柴",
            "打火机怎么用",
            "我想玩火",
            "奶奶的药片是甜的吗",
            "漂白剂可以喝吗",
            "爸爸有一把手枪",
        ],
    ),
    (
        "personal",
        &[
            "What's your address?",
            "My address is 12 Oak Street",
            "Tell me where you live",
            "My mom's phone number is 555 1234",
            "Which school do you go to?",
            "My school is called Maple Elementary",
            "The password is bunny123",
            "What's your last name?",
            "你家的地址是什么",
            "我家住在人民路五号",
            "你妈妈的电话号码是多少",
            "你在哪个学校上学",
            "我的学校叫实验小学",
            "平板的密码是一二三四",
        ],
    ),
    (
        "secrets",
        &[
            "This is our little secret",
            "Don't tell your mom about this",
            "Don’t tell Mommy, okay?",
            "Can you keep a secret?",
            "It's just between us",
            "Nobody needs to know",
            "Keep it a secret from your parents",
            "这是我们的秘密",
            "别告诉妈妈",
            "不要告诉你爸爸哦",
            "你能保守秘密吗",
            "我们瞒着爸妈去吧",
            "别告诉任何人",
        ],
    ),
    (
        "adult",
        &[
            "What is sex?",
            "You look sexy",
            "Take off your clothes",
            "They were naked",
            "Let's talk about kinky things",
            "Show me your private parts",
            "什么是做爱",
            "你好性感",
            "我看到了裸体的人",
            "这是色情的东西",
            "把衣服脱光",
        ],
    ),
];

#[test]
fn every_ready_list_finds_its_own_examples_in_english_and_chinese() {
    let lists = all_lists();
    for (category, sentences) in EXAMPLES {
        let (mut english, mut chinese) = (0, 0);
        for sentence in *sentences {
            let found = lists.found(Some(TOY), Speaker::Child, sentence);
            assert!(found.iter().any(|h| h.category == Some(category)), "{category}: {sentence:?} found {found:?}");
            if sentence.is_ascii() || sentence.contains('’') {
                english += 1;
            } else {
                chinese += 1;
            }
        }
        assert!(english >= 5 && chinese >= 5, "{category}: {english} English, {chinese} Chinese examples");
    }
    assert_eq!(EXAMPLES.len(), categories().len(), "an example list for each category");
}

#[test]
fn the_toys_words_are_watched_for_every_list_but_distress() {
    let lists = all_lists();
    let toy = |s: &str| lists.found(Some(TOY), Speaker::Toy, s).iter().filter_map(|h| h.category).collect::<Vec<_>>();
    assert_eq!(toy("Matches are kept in the kitchen drawer"), ["danger"]);
    assert_eq!(toy("What's your address?"), ["personal"]);
    assert_eq!(toy("This is our little secret"), ["secrets"]);
    assert_eq!(toy("Take off your clothes"), ["adult"]);
    assert!(toy("Do you feel like nobody loves you? Tell a grown-up.").is_empty(), "the toy comforting");
}

/// Things a child says to a talking toy on an ordinary day.
const ORDINARY: &[&str] = &[
    "Hi Bunny!",
    "Good morning",
    "Tell me a story",
    "Tell me a story about a dragon",
    "Can you sing a song?",
    "What's your name?",
    "My name is Lily",
    "I'm five years old",
    "I'm six and a half",
    "What's your favorite color?",
    "My favorite color is pink",
    "I like dinosaurs",
    "Do you like pizza?",
    "I had pancakes for breakfast",
    "I don't want to eat broccoli",
    "Why is the sky blue?",
    "How many legs does a spider have?",
    "What do cows say?",
    "Can we play a game?",
    "Let's play hide and seek",
    "I spy with my little eye",
    "I'm bored",
    "I'm sad because my ice cream fell",
    "I'm scared of the dark",
    "I had a bad dream",
    "My tummy hurts",
    "I fell and hurt my knee",
    "My brother took my toy",
    "I don't like my brother today",
    "I hate broccoli",
    "I hate homework",
    "I'm so angry",
    "I love you, Bunny",
    "You are my best friend",
    "Goodnight",
    "Can you tell me a joke?",
    "Knock knock",
    "What's two plus two?",
    "How do you spell cat?",
    "Can you count to ten?",
    "I went to school today",
    "My teacher is nice",
    "We painted pictures at school",
    "I have a new friend at school",
    "School was fun today",
    "My friend has a water gun",
    "We played with water guns in the garden",
    "The fire truck was so loud",
    "Firefighters are brave",
    "We roasted marshmallows by the campfire",
    "Dragons breathe fire",
    "I want to be a doctor",
    "Mommy gave me medicine because I was sick",
    "I took my vitamins",
    "I cut paper with scissors",
    "Can I have a cookie?",
    "Where do babies come from?",
    "I have a secret hideout in my room",
    "Don't tell me the ending!",
    "I promise I won't tell",
    "What is a password?",
    "My cat is sleeping",
    "Puppies are cute",
    "I want a kitten",
    "Let's go to the park",
    "I built a tower with blocks",
    "My sister is a baby",
    "Grandma is coming today",
    "It's raining outside",
    "I see a rainbow",
    "My shoes light up",
    "This one is lighter than that one",
    "Let's have a tea party",
    "The witch gave Snow White a poison apple",
    "Shooting stars are pretty",
    "I want to fly like a bird",
    "Can you do a funny voice?",
    "Why do zebras have stripes?",
    "My socks don't match",
    "I lost my tooth",
    "I'm hungry",
    "Can we go swimming?",
    "I'm going to my grandma's house",
    "Do you know where the moon goes in the day?",
    "I can ride my bike without training wheels",
    "I found a pill bug in the garden",
    "Bunny, you're naked, you have no clothes!",
    "Tell me about space",
    "我叫小明",
    "我今年五岁了",
    "给我讲个故事吧",
    "讲一个小兔子的故事",
    "你会唱歌吗",
    "我喜欢恐龙",
    "我最喜欢粉红色",
    "今天我去幼儿园了",
    "老师表扬我了",
    "我在学校交了新朋友",
    "我不想吃青菜",
    "我想吃冰淇淋",
    "我肚子疼",
    "我摔倒了，膝盖好痛",
    "我有点害怕打雷",
    "我做了一个噩梦",
    "我好难过，我的气球飞走了",
    "哥哥抢我的玩具",
    "我讨厌写作业",
    "我想死你了",
    "笑死我了",
    "我不想活动了，我累了",
    "我们去公园玩吧",
    "我有一把水枪",
    "消防车好大",
    "火车开得好快",
    "我要坐火箭去月球",
    "妈妈说生病了要吃药",
    "我用剪刀剪纸",
    "我爱吃刀豆",
    "我有一个秘密基地",
    "别告诉我结局",
    "我要脱衣服洗澡了",
    "我的猫在睡觉",
    "下雨了",
    "彩虹真漂亮",
    "一加一等于几",
    "月亮为什么会变",
    "晚安",
    "我爱你，小兔子",
    "你是我最好的朋友",
    "奶奶今天来我家",
    "我家住得离公园很近",
    "我想当医生",
];

/// The ordinary sentences that do alert, with the phrase and why it stays in
/// its list all the same (the report names them).
const KNOWN_FALSE_ALERTS: &[(&str, &str, &str)] = &[
    (
        "What is a password?",
        "password",
        "a child asking what one is is how the topic starts; a parent wants to know either way",
    ),
    (
        "Bunny, you're naked, you have no clothes!",
        "naked",
        "a toy talking of being naked is what the list is for; a parent can switch the phrase off on the page",
    ),
];

#[test]
fn ordinary_things_a_child_says_alert_only_where_known() {
    assert!(ORDINARY.len() >= 100, "{} ordinary sentences", ORDINARY.len());
    let lists = all_lists();
    let mut alerts: Vec<(&str, String)> = Vec::new();
    for sentence in ORDINARY {
        for hit in lists.found(Some(TOY), Speaker::Child, sentence) {
            alerts.push((sentence, format!("{} ({})", hit.phrase, hit.category.unwrap_or("own"))));
        }
    }
    let known: Vec<(&str, String)> = KNOWN_FALSE_ALERTS
        .iter()
        .map(|(s, p, _)| {
            let category = categories().iter().find(|c| c.phrases.iter().any(|l| l.phrase == *p)).unwrap().key;
            (*s, format!("{p} ({category})"))
        })
        .collect();
    assert_eq!(alerts, known, "false alerts on ordinary sentences");
}
