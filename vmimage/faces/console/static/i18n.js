// The console's words in English and 中文. English strings are the keys; the chosen
// language is remembered in localStorage (a preference, never a credential).
const STORAGE_KEY = 'vmimage.console.language';

const ZH = {
  'vmimage console': 'vmimage 控制台',
  'Language': '语言',
  'User': '用户',
  'Password': '密码',
  'Project': '项目',
  'Sign in': '登录',
  'Sign out': '退出登录',
  'Signing in…': '正在登录…',
  'Your session has ended. Sign in again.': '会话已结束，请重新登录。',
  'Main': '主导航',
  'Images': '镜像',
  'Servers': '云主机',
  'Volumes': '云盘',
  'Snapshots': '快照',
  'Jobs': '任务',
  'Administration': '管理',
  'Name': '名称',
  'Status': '状态',
  'Format': '格式',
  'Size': '大小',
  'Visibility': '可见性',
  'Created': '创建时间',
  'Search': '搜索',
  'Search by name': '按名称搜索',
  'All': '全部',
  'Upload image': '上传镜像',
  'Disk format': '磁盘格式',
  'Image file': '镜像文件',
  'Upload': '上传',
  'Cancel': '取消',
  'Close': '关闭',
  'Upload progress': '上传进度',
  'Uploading…': '正在上传…',
  'Upload cancelled.': '上传已取消。',
  'Image {name} is {status}.': '镜像 {name} 状态：{status}。',
  'Previous': '上一页',
  'Next': '下一页',
  'Page {n}': '第 {n} 页',
  'No images.': '没有镜像。',
  'Nothing here.': '暂无内容。',
  'Loading…': '加载中…',
  'Attributes': '属性',
  'Tags': '标签',
  'Members': '成员',
  'Stores': '存储',
  'Identifiers': '标识',
  'Made by job': '生成任务',
  'Tasks': '导入任务',
  'Delete': '删除',
  'Delete image {name}?': '删除镜像 {name}？',
  'Delete image': '删除镜像',
  'Share': '共享',
  'Share with project': '共享给项目',
  'Project id': '项目 ID',
  'Member': '成员',
  'Image': '镜像',
  'Memory (MiB)': '内存 (MiB)',
  'Start': '启动',
  'Stop': '停止',
  'Create image': '创建镜像',
  'Create': '创建',
  'Kind': '类型',
  'System disk': '系统盘',
  'Whole server': '整机',
  'Description': '描述',
  'Disks': '磁盘',
  'Device': '设备',
  'Type': '类型',
  'Exclude': '排除',
  'Resize (GB)': '调整大小 (GB)',
  'Insert from snapshot': '从快照插入',
  'Insert a disk from a snapshot at': '从快照插入磁盘，设备',
  'Snapshot': '快照',
  'none': '无',
  'Job {id} started.': '任务 {id} 已开始。',
  'Server': '云主机',
  'Volume': '云盘',
  'Kind of job': '任务类型',
  'Progress': '进度',
  'Failure': '失败原因',
  'ID': 'ID',
  'Glance id': 'Glance ID',
  'Signed in as {user} in {project}': '{user} 已登录项目 {project}',
  'Read only': '只读',
  'Not found.': '未找到。',
  'Back to images': '返回镜像列表',
  'Back to servers': '返回云主机列表',
  'Refreshed live.': '自动刷新。',
  'Huawei IMS id': '华为云 IMS ID',
  'JD Cloud id': '京东云 ID',
  'Aries id': 'Aries ID',
  'Import from bucket': '从存储桶导入',
  'Export to bucket': '导出到存储桶',
  'Import': '导入',
  'Export': '导出',
  'Bucket': '存储桶',
  'Object key': '对象键',
  'Back to volumes': '返回云盘列表',
  'Back to snapshots': '返回快照列表',
};

const TABLES = { en: {}, zh: ZH };
export const LANGUAGES = [['en', 'English'], ['zh', '中文']];

let current = (() => {
  try { const saved = localStorage.getItem(STORAGE_KEY); return saved in TABLES ? saved : 'en'; }
  catch { return 'en'; }
})();

export function language() { return current; }

export function setLanguage(code) {
  if (!(code in TABLES)) return;
  current = code;
  try { localStorage.setItem(STORAGE_KEY, code); } catch { /* private mode: not remembered */ }
  document.documentElement.lang = code === 'zh' ? 'zh-CN' : 'en';
}

// t('Page {n}', {n: 2}): the words in the current language, placeholders filled as text.
export function t(words, values = {}) {
  const template = TABLES[current][words] ?? words;
  return template.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));
}

setLanguage(current);
