// English and Simplified Chinese texts of the WebUI, CIHP class names and number formatting.
// Keys are shared by both languages; index.html marks translatable nodes with data-i18n.

export const LANGUAGES = ["en", "zh-CN"];

const MESSAGES = {
  en: {
    skip: "Skip to content",
    title: "Human parsing",
    subtitle: "Find the people in a photo and colour their body parts and clothes.",
    language: "Language",
    "privacy.title": "Privacy notice",
    "privacy.memory":
      "Your photo is sent to this server only to be analysed. It is processed in memory only: " +
      "it is never written to disk, never stored, logged or shared, and it is discarded as soon " +
      "as the answer is sent.",
    "privacy.returned":
      "What comes back: the image size, each person found (score, box and body parts) and " +
      "label maps as PNG images. They are shown in this page only; nothing is kept when you " +
      "close the tab.",
    "privacy.consent":
      "Only upload photos you are allowed to use: pictures of people are personal data.",
    "privacy.licence": "The M2FP parsing model and its weights are licensed under",
    "privacy.licence_end": ": non-commercial use only, with attribution to the M2FP authors.",
    "privacy.accept": "I understand: enable uploads",
    "privacy.accepted": "Privacy notice accepted for this tab.",
    "privacy.withdraw": "Withdraw",
    "upload.title": "Upload a photo",
    "upload.drop": "Drag and drop a photo here",
    "upload.or": "or",
    "upload.choose": "Choose a photo…",
    "upload.hint": "JPEG or PNG, up to {size}. One photo at a time.",
    "upload.locked": "Accept the privacy notice above to enable uploads.",
    "upload.cancel": "Cancel",
    "status.working": "Analysing the photo…",
    "status.done": "Done in {seconds} s. Persons found: {persons}.",
    "status.done_single": "Done in {seconds} s.",
    "status.cancelled": "Cancelled.",
    "results.title": "Result",
    "results.opacity": "Overlay opacity",
    "results.original": "Original",
    "results.original_alt": "The photo you uploaded",
    "results.overlay": "Parsing overlay",
    "results.overlay_alt": "Your photo with each body part coloured as listed in the legend",
    "results.overlay_alt_person":
      "Your photo with person {n} highlighted and everything else dimmed",
    "results.legend": "Classes present",
    "results.legend_empty": "No body part was found in this photo.",
    "results.persons": "Persons",
    "results.parts": "Parts",
    "results.persons_empty": "No person was found.",
    "results.highlight_hint": "Select a person to highlight them; everything else is dimmed.",
    "results.show_all": "Show everyone",
    "results.person": "Person {n}",
    "results.score": "score {score}",
    "results.no_parts": "no parts",
    "results.unassigned": "Parts not assigned to a person: {parts}",
    "download.overlay": "Download overlay (PNG)",
    "download.json": "Download data (JSON)",
    footer:
      "m2fp: human parsing. The M2FP models are for non-commercial use " +
      "(CC BY-NC 4.0).",
    "error.reference": "Reference: {id}",
    "error.retry": "Try again in {time}.",
    "time.seconds": "{n} s",
    "time.minutes": "{n} min",
    "error.not_image": "Only JPEG and PNG photos are accepted (.jpg, .jpeg, .png).",
    "error.too_big": "This file is {size}; the limit is {limit}.",
    "error.empty": "This file is empty.",
    "error.one_file": "Please choose one photo at a time.",
    "error.locked": "Accept the privacy notice first.",
    "error.network": "The server could not be reached. Check your connection and try again.",
    "error.bad_response": "The server sent an unexpected answer. Please try again later.",
    "error.classes": "The list of classes could not be loaded. Reload the page to try again.",
    "error.display": "Your browser could not display this image.",
    "error.payload_too_large": "The file is larger than this server accepts.",
    "error.too_many_pixels": "The image has too many pixels. Please use a smaller photo.",
    "error.unsupported_media_type": "This file is not a JPEG or PNG image.",
    "error.bad_extension": "The file name must end in .jpg, .jpeg or .png.",
    "error.corrupt_image": "The image is damaged or incomplete and could not be read.",
    "error.empty_body": "The file is empty.",
    "error.bad_request": "The server did not understand the request.",
    "error.forbidden_origin":
      "The server refused the request because it did not come from this page. Reload the " +
      "page and try again.",
    "error.unauthorized": "This server needs an API key.",
    "error.rate_limited": "Too many photos in a short time.",
    "error.banned": "Uploads from your address are blocked for a while after repeated invalid files.",
    "error.overloaded": "The server is busy.",
    "error.timeout": "The analysis took too long.",
    "error.storage_unavailable": "The service is temporarily unavailable.",
    "error.internal_error": "Something went wrong on the server.",
    "error.unknown": "The server could not process the photo ({code}).",
  },
  "zh-CN": {
    skip: "跳到主要内容",
    title: "人体解析",
    subtitle: "找出照片中的人物，并为其身体部位和衣物着色。",
    language: "语言",
    "privacy.title": "隐私说明",
    "privacy.memory":
      "您的照片仅为分析而发送到本服务器，只在内存中处理：不会写入磁盘，不会被保存、记录或分享，" +
      "结果返回后立即丢弃。",
    "privacy.returned":
      "返回内容：图像尺寸、检测到的每个人物（置信度、边界框和身体部位）以及 PNG 格式的标签图。" +
      "这些结果只显示在本页面中，关闭标签页后不会保留任何内容。",
    "privacy.consent": "请只上传您有权使用的照片：人物照片属于个人数据。",
    "privacy.licence": "M2FP 解析模型及其权重采用以下许可协议：",
    "privacy.licence_end": "，仅限非商业用途，并须注明 M2FP 作者。",
    "privacy.accept": "我已了解，启用上传",
    "privacy.accepted": "已在本标签页中接受隐私说明。",
    "privacy.withdraw": "撤回",
    "upload.title": "上传照片",
    "upload.drop": "将照片拖放到此处",
    "upload.or": "或",
    "upload.choose": "选择照片…",
    "upload.hint": "JPEG 或 PNG 格式，最大 {size}，每次一张。",
    "upload.locked": "请先接受上方的隐私说明以启用上传。",
    "upload.cancel": "取消",
    "status.working": "正在分析照片…",
    "status.done": "完成，用时 {seconds} 秒。检测到的人数：{persons}。",
    "status.done_single": "完成，用时 {seconds} 秒。",
    "status.cancelled": "已取消。",
    "results.title": "结果",
    "results.opacity": "叠加不透明度",
    "results.original": "原图",
    "results.original_alt": "您上传的照片",
    "results.overlay": "解析叠加图",
    "results.overlay_alt": "按身体部位着色的照片，颜色含义见图例",
    "results.overlay_alt_person": "突出显示人物 {n} 的照片，其余部分已变暗",
    "results.legend": "出现的类别",
    "results.legend_empty": "照片中未发现身体部位。",
    "results.persons": "人物",
    "results.parts": "部位",
    "results.persons_empty": "未发现人物。",
    "results.highlight_hint": "选择一个人物以突出显示，其余部分将变暗。",
    "results.show_all": "显示全部",
    "results.person": "人物 {n}",
    "results.score": "置信度 {score}",
    "results.no_parts": "无部位",
    "results.unassigned": "未归属任何人物的部位：{parts}",
    "download.overlay": "下载叠加图（PNG）",
    "download.json": "下载数据（JSON）",
    footer: "m2fp：人体解析。M2FP 模型仅限非商业用途（CC BY-NC 4.0）。",
    "error.reference": "参考编号：{id}",
    "error.retry": "请在 {time}后重试。",
    "time.seconds": "{n} 秒",
    "time.minutes": "{n} 分钟",
    "error.not_image": "仅接受 JPEG 和 PNG 照片（.jpg、.jpeg、.png）。",
    "error.too_big": "该文件大小为 {size}，上限为 {limit}。",
    "error.empty": "该文件为空。",
    "error.one_file": "请每次只选择一张照片。",
    "error.locked": "请先接受隐私说明。",
    "error.network": "无法连接服务器，请检查网络后重试。",
    "error.bad_response": "服务器返回了意外的响应，请稍后重试。",
    "error.classes": "无法加载类别列表，请刷新页面重试。",
    "error.display": "您的浏览器无法显示此图像。",
    "error.payload_too_large": "文件超过了服务器允许的大小。",
    "error.too_many_pixels": "图像像素过多，请使用较小的照片。",
    "error.unsupported_media_type": "该文件不是 JPEG 或 PNG 图像。",
    "error.bad_extension": "文件名必须以 .jpg、.jpeg 或 .png 结尾。",
    "error.corrupt_image": "图像已损坏或不完整，无法读取。",
    "error.empty_body": "文件为空。",
    "error.bad_request": "服务器无法理解该请求。",
    "error.forbidden_origin": "请求不是来自本页面，已被服务器拒绝。请刷新页面后重试。",
    "error.unauthorized": "此服务器需要 API 密钥。",
    "error.rate_limited": "短时间内上传的照片过多。",
    "error.banned": "由于多次上传无效文件，您的地址暂时被禁止上传。",
    "error.overloaded": "服务器繁忙。",
    "error.timeout": "分析超时。",
    "error.storage_unavailable": "服务暂时不可用。",
    "error.internal_error": "服务器出错了。",
    "error.unknown": "服务器无法处理该照片（{code}）。",
  },
};

// CIHP and LIP class names as the API spells them (m2fp.labels), shown to people.
const CLASS_NAMES = {
  en: {
    Background: "Background",
    Hat: "Hat",
    Hair: "Hair",
    Glove: "Glove",
    Sunglasses: "Sunglasses",
    UpperClothes: "Upper clothes",
    Dress: "Dress",
    Coat: "Coat",
    Socks: "Socks",
    Pants: "Pants",
    "Torso-skin": "Torso skin",
    Jumpsuits: "Jumpsuit",
    Scarf: "Scarf",
    Skirt: "Skirt",
    Face: "Face",
    "Left-arm": "Left arm",
    "Right-arm": "Right arm",
    "Left-leg": "Left leg",
    "Right-leg": "Right leg",
    "Left-shoe": "Left shoe",
    "Right-shoe": "Right shoe",
    Human: "Person",
  },
  "zh-CN": {
    Background: "背景",
    Hat: "帽子",
    Hair: "头发",
    Glove: "手套",
    Sunglasses: "太阳镜",
    UpperClothes: "上衣",
    Dress: "连衣裙",
    Coat: "外套",
    Socks: "袜子",
    Pants: "裤子",
    "Torso-skin": "躯干皮肤",
    Jumpsuits: "连体衣",
    Scarf: "围巾",
    Skirt: "裙子",
    Face: "脸部",
    "Left-arm": "左臂",
    "Right-arm": "右臂",
    "Left-leg": "左腿",
    "Right-leg": "右腿",
    "Left-shoe": "左鞋",
    "Right-shoe": "右鞋",
    Human: "人体",
  },
};

/** The supported language closest to the browser's preferences ("en" if none is). */
export function preferredLanguage(browserLanguages) {
  for (const tag of browserLanguages) {
    const lower = String(tag).toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

/** Translator for one language: t(key, params), className(name) and number formats. */
export function translator(language) {
  const messages = MESSAGES[language] ?? MESSAGES.en;
  const classes = CLASS_NAMES[language] ?? CLASS_NAMES.en;
  const decimal = new Intl.NumberFormat(language, { maximumFractionDigits: 1 });
  const score = new Intl.NumberFormat(language, {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  });

  function t(key, params = {}) {
    const template = messages[key] ?? MESSAGES.en[key] ?? key;
    return template.replace(/\{(\w+)\}/g, (match, name) =>
      name in params ? String(params[name]) : match,
    );
  }

  return {
    language,
    t,
    has: (key) => key in MESSAGES.en,
    className: (name) => classes[name] ?? name,
    score: (value) => score.format(value),
    seconds: (value) => decimal.format(value),
    bytes: (value) => `${decimal.format(value / (1024 * 1024))} MB`,
    duration(seconds) {
      if (seconds < 120) return t("time.seconds", { n: Math.max(1, Math.ceil(seconds)) });
      return t("time.minutes", { n: Math.ceil(seconds / 60) });
    },
  };
}
