// File exchange pieces: path safety, names, resource patterns, provider files, FileReceiver
// on real directories, and the manifest checks of file subscriptions.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/file_receiver.h"
#include "agent/shared_root.h"
#include "common/file_path.h"
#include "common/sha256.h"
#include "scheduler/file_listing.h"
#include "scheduler/file_patterns.h"
#include "scheduler/file_run.h"
#include "scheduler/manifest.h"
#include "scheduler/name_encoding.h"
#include "scheduler/provider_file.h"
#include "scheduler/sqlite_store.h"
#include "test_util.h"

namespace dx {
namespace {

using testing::TempDir;

TEST_CASE("paths from the wire must stay inside the root") {
  for (const char* good : {"a.txt", "教学资源/课件 一/讲义.pdf", "a/b/c", ".hidden"}) {
    CAPTURE(good);
    CHECK(IsSafeRelativePath(good));
  }
  for (const char* bad :
       {"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a/", "..", "a/.."}) {
    CAPTURE(bad);
    CHECK_FALSE(IsSafeRelativePath(bad));
  }
  CHECK_FALSE(IsSafeRelativePath(std::string("a\0b", 3)));
  CHECK(IsSameOrUnder("a/b", "a"));
  CHECK(IsSameOrUnder("a", "a"));
  CHECK_FALSE(IsSameOrUnder("ab", "a"));
  CHECK_FALSE(IsSameOrUnder("a", "a/b"));
}

TEST_CASE("UTF-8 is checked strictly, and anything else is shown escaped") {
  CHECK(IsValidUtf8("讲义 😀 ｛全角｝"));
  CHECK_FALSE(IsValidUtf8("\xB2\xE2\xCA\xD4.txt"));  // 测试 in GBK
  CHECK_FALSE(IsValidUtf8("\xC0\xAF"));              // overlong '/'
  CHECK_FALSE(IsValidUtf8("\xED\xA0\x80"));          // a surrogate
  CHECK_FALSE(IsValidUtf8("\xE4\xB8"));              // cut short
  CHECK(EscapeInvalidUtf8("\xB2\xE2\xCA\xD4.txt") == "\\xB2\\xE2\\xCA\\xD4.txt");
  CHECK(EscapeInvalidUtf8("课件/\xB2\xE2.txt") == "课件/\\xB2\\xE2.txt");
  CHECK(EscapeInvalidUtf8("正常") == "正常");
}

TEST_CASE("names from a GBK share are converted, or refused when they are not valid") {
  auto gbk = scheduler::NameEncoding::Open("gb18030");
  REQUIRE(gbk.ok());
  auto name = gbk->ToUtf8("\xB2\xE2\xCA\xD4.txt");
  REQUIRE(name.ok());
  CHECK(name.value() == "测试.txt");
  CHECK_FALSE(gbk->ToUtf8("\x81").ok());  // a lead byte alone
  auto utf8 = scheduler::NameEncoding::Open("UTF-8");
  REQUIRE(utf8.ok());
  CHECK(utf8->ToUtf8("测试.txt").value() == "测试.txt");
  auto refused = utf8->ToUtf8("\xB2\xE2\xCA\xD4.txt");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("\\xB2\\xE2") != std::string::npos);
  CHECK(refused.status().message().find("name_encoding") != std::string::npos);
  CHECK_FALSE(scheduler::NameEncoding::Open("no-such-encoding").ok());
}

TEST_CASE("globs: '**' spans any number of folders; '*' and '?' stay in one name") {
  struct Case {
    const char* pattern;
    const char* path;
    bool match;
  };
  const Case cases[] = {
      {"**/*.pdf", "a.pdf", true},
      {"**/*.pdf", "课件/a.pdf", true},
      {"**/*.pdf", "课件/高一/第一章/a.pdf", true},
      {"**/*.pdf", "课件/a.pdfx", false},
      {"课件/**/*.pdf", "课件/a.pdf", true},
      {"课件/**/*.pdf", "课件/高一/a.pdf", true},
      {"课件/**/*.pdf", "课件/高一/第一章/第二节/a.pdf", true},
      {"课件/**/*.pdf", "教案/高一/a.pdf", false},
      {"课件/**", "课件", true},
      {"课件/**", "课件/x/y.txt", true},
      {"**", "any/thing", true},
      {"a/**/b/**/c", "a/b/c", true},
      {"a/**/b/**/c", "a/x/b/y/z/c", true},
      {"a/**/b/**/c", "a/x/c", false},
      {"**/**/x", "x", true},
      {"课件/*.pdf", "课件/a.pdf", true},
      {"课件/*.pdf", "课件/高一/a.pdf", false},
      {"*.pdf", "深/层/a.pdf", true},  // no '/': the name at any depth
      {"*", ".hidden", true},
      {"讲义?.txt", "讲义一.txt", true},  // '?' is one character, not one byte
      {"讲义?.txt", "讲义一二.txt", false},
      {"[0-9][0-9]*.txt", "07 资料.txt", true},
      {"[!0-9]*.txt", "07 资料.txt", false},
      {"[一-龥].txt", "中.txt", true},
      {"\\*.txt", "*.txt", true},
      {"\\*.txt", "a.txt", false},
      {"[abc", "[abc", true},       // an unclosed '[' is a character
      {"课件/", "课件", true},      // a trailing '/' is ignored
      {"**.pdf", "a/b.pdf", true},  // '**' inside a name is '*'
      {"**.pdf", "b.pdf", true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.pattern);
    CAPTURE(c.path);
    CHECK(scheduler::GlobMatch(c.pattern, c.path) == c.match);
  }
}

TEST_CASE("entries are taken when they or their folders match; exclusion wins") {
  const std::vector<std::string> include = {"*.pdf", "课件/*.docx", "视频"};
  const std::vector<std::string> exclude = {"草稿*", "**/旧/**"};
  CHECK(scheduler::IsIncluded("a/b/c.pdf", include, exclude));
  CHECK(scheduler::IsIncluded("课件/教案.docx", include, exclude));
  CHECK_FALSE(scheduler::IsIncluded("课件/子目录/教案.docx", include, exclude));
  CHECK(scheduler::IsIncluded("视频/第一讲/a.mp4", include, exclude));  // the folder is taken
  CHECK_FALSE(scheduler::IsIncluded("x/草稿 1.pdf", include, exclude));
  CHECK_FALSE(scheduler::IsIncluded("草稿/a.pdf", include, exclude));  // below an excluded folder
  CHECK_FALSE(scheduler::IsIncluded("课件/旧/a.pdf", include, exclude));
  CHECK_FALSE(scheduler::IsIncluded("notes.txt", include, exclude));
  CHECK(scheduler::IsIncluded("notes.txt", {}, {}));
  CHECK(scheduler::WorthCompressing("讲义.txt"));
  CHECK_FALSE(scheduler::WorthCompressing("公开课.MP4"));
  CHECK_FALSE(scheduler::WorthCompressing("a.docx"));
}

TEST_CASE("patterns that can never match are refused") {
  for (const char* good : {"**/*.pdf", "课件/**", "*.pdf", "a/b/", "[0-9]*", "\\[x"}) {
    CAPTURE(good);
    CHECK(scheduler::CheckPattern(good, true).ok());
  }
  struct Bad {
    const char* pattern;
    bool recursive;
    const char* why;
  };
  for (const Bad& b : {Bad{"", true, "empty"}, Bad{"/课件/*.pdf", true, "starts with '/'"},
                       Bad{"a//b", true, "empty folder level"}, Bad{"a/../b", true, "'..'"},
                       Bad{"./a", true, "'.'"}, Bad{"[0-9", true, "never closed"},
                       Bad{"a\\", true, "lone"}, Bad{"课件/*.pdf", false, "not recursive"}}) {
    CAPTURE(b.pattern);
    Status st = scheduler::CheckPattern(b.pattern, b.recursive);
    CHECK_FALSE(st.ok());
    CHECK(st.message().find(b.why) != std::string::npos);
  }
  CHECK(scheduler::CheckPattern("**/*.pdf", false).ok());
  CHECK(scheduler::MatchesEverything("**"));
  CHECK(scheduler::MatchesEverything("*"));
  CHECK(scheduler::MatchesEverything("**/*"));
  CHECK_FALSE(scheduler::MatchesEverything("*.tmp"));
}

void WriteFile(const std::string& path, const std::string& data) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

TEST_CASE("a listing takes what the patterns take, reports what it cannot read or name") {
  TempDir dir;
  const std::string root = dir.File("share");
  WriteFile(root + "/课件/高一/a.pdf", "a");
  WriteFile(root + "/课件/b.docx", "b");
  WriteFile(root + "/草稿/c.pdf", "c");
  WriteFile(root + "/.hidden.pdf", "h");
  WriteFile(root + "/\xB2\xE2\xCA\xD4.pdf", "gbk");
  std::filesystem::create_directories(root + "/空目录/更深");
  std::filesystem::create_symlink("/etc", root + "/链接");
  REQUIRE(mkfifo((root + "/管道.pdf").c_str(), 0600) == 0);
  scheduler::CatalogEntry e;
  e.kind = "file";
  e.name = "测试-文件";
  e.directory = root;
  e.exclude = {"草稿"};
  auto listing = scheduler::ListResourceFiles(e);
  REQUIRE(listing.ok());
  std::vector<std::string> files;
  for (const auto& f : listing->files) files.push_back(f.path);
  CHECK(files == std::vector<std::string>{".hidden.pdf", "课件/b.docx", "课件/高一/a.pdf"});
  std::vector<std::string> leaves;
  for (const auto& f : listing->folders) {
    if (f.leaf) leaves.push_back(f.path);
  }
  CHECK(leaves == std::vector<std::string>{"空目录/更深"});
  REQUIRE(listing->problems.size() == 1);
  CHECK(listing->problems[0].path == "\\xB2\\xE2\\xCA\\xD4.pdf");
  CHECK(listing->problems[0].error.code() == StatusCode::kInvalidArgument);
  e.name_encoding = "gb18030";  // (the UTF-8 names of this tree are then misread, as expected)
  listing = scheduler::ListResourceFiles(e);
  REQUIRE(listing.ok());
  bool converted = false;
  for (const auto& f : listing->files) {
    if (f.path == "测试.pdf") converted = f.raw_path == "\xB2\xE2\xCA\xD4.pdf";
  }
  CHECK(converted);
  e.directory = root + "/不存在";
  CHECK(scheduler::ListResourceFiles(e).status().code() == StatusCode::kUnavailable);
}

TEST_CASE("a provider file is read only as a state it had, and never blocks") {
  TempDir dir;
  const std::string root = dir.File("share");
  WriteFile(root + "/a.txt", "第一版");
  auto file = scheduler::ProviderFile::Open(root, "a.txt");
  REQUIRE(file.ok());
  CHECK(file->version().size == std::string("第一版").size());
  CHECK(file->CheckUnchanged().ok());
  {
    std::ofstream out(root + "/a.txt", std::ios::binary | std::ios::in);
    out << "改";
  }
  Status changed = file->CheckUnchanged();
  CHECK(changed.code() == StatusCode::kUnavailable);
  CHECK(changed.message().find("while it was read") != std::string::npos);
  REQUIRE(mkfifo((root + "/fifo").c_str(), 0600) == 0);  // open() must not wait for a writer
  auto fifo = scheduler::ProviderFile::Open(root, "fifo");
  CHECK(fifo.status().code() == StatusCode::kFailedPrecondition);
  CHECK(fifo.status().message().find("FIFO") != std::string::npos);
  CHECK(scheduler::ProviderFile::Open(root, "gone").status().code() == StatusCode::kNotFound);
  std::filesystem::create_symlink(root + "/a.txt", root + "/link");
  CHECK_FALSE(scheduler::ProviderFile::Open(root, "link").ok());
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Receiver {
  explicit Receiver(const std::string& root, std::optional<unsigned> mode = 0640)
      : files(root, mode, [this](const std::vector<agent::ReceivedFile>& f) {
          records.insert(records.end(), f.begin(), f.end());
          return Status::Ok();
        }) {}
  // Every answer so far, once what was handed over is durable.
  std::vector<FileResult> Results() {
    files.FinishPending();
    return files.TakeResults(true);
  }
  FileResult One() {
    auto r = Results();
    REQUIRE(r.size() == 1);
    return r[0];
  }
  FileResult Put(const FilePut& p) {
    files.Put(p);
    return One();
  }
  std::vector<agent::ReceivedFile> records;
  agent::FileReceiver files;
};

FilePut Put(const std::string& path, const std::string& data) {
  FilePut p;
  p.meta = {"s", 1, path, data.size(), Sha256::Hex(data), ""};
  p.data = data;
  return p;
}

std::vector<std::string> PartFiles(const std::string& dir) {
  std::vector<std::string> parts;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".dxpart") == 0) {
      parts.push_back(name);
    }
  }
  return parts;
}

TEST_CASE("a small file lands whole with its mode, and a known one is not rewritten") {
  TempDir dir;
  std::filesystem::create_directories(dir.File("root"));
  Receiver r(dir.File("root"));
  FileResult res = r.Put(Put("课件/讲义 1.txt", "第一页"));
  CHECK(res.code == StatusCode::kOk);
  CHECK(res.outcome == "written");
  CHECK(Slurp(dir.File("root/课件/讲义 1.txt")) == "第一页");
  struct stat st {};
  REQUIRE(stat(dir.File("root/课件/讲义 1.txt").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  CHECK(r.Put(Put("课件/讲义 1.txt", "第一页")).outcome == "unchanged");
  REQUIRE(r.records.size() == 2);
  FilePut corrupt = Put("x.txt", "data");
  corrupt.meta.sha256 = Sha256::Hex("other");
  CHECK(r.Put(corrupt).code == StatusCode::kDataLoss);
  CHECK_FALSE(std::filesystem::exists(dir.File("root/x.txt")));
  FilePut huge = Put("big.txt", "x");
  huge.meta.size = uint64_t{1} << 40;  // a size from the wire is bounded before allocating
  CHECK(r.Put(huge).code == StatusCode::kDataLoss);
  CHECK(PartFiles(dir.File("root")).empty());
}

TEST_CASE("files.mode: keep leaves modes to the filesystem") {
  TempDir dir;
  std::filesystem::create_directories(dir.File("root"));
  Receiver r(dir.File("root"), std::nullopt);
  mode_t old = umask(022);
  CHECK(r.Put(Put("a.txt", "x")).code == StatusCode::kOk);
  umask(old);
  struct stat st {};
  REQUIRE(stat(dir.File("root/a.txt").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
}

TEST_CASE("names of up to 255 bytes land: part files are named by a short hash") {
  TempDir dir;
  std::filesystem::create_directories(dir.File("root"));
  Receiver r(dir.File("root"));
  std::string name;
  while (name.size() + 3 <= 255 - 4) name += "长";  // 84 characters, 252 bytes
  std::string name231;
  while (name231.size() < 225) name231 += "长";
  name231 += "ab.txt";
  for (const std::string& n : {name + ".txt", name + "名", name231}) {
    CAPTURE(n.size());
    REQUIRE(n.size() <= 255);
    CHECK(r.Put(Put("课件/" + n, "内容")).code == StatusCode::kOk);
    CHECK(Slurp(dir.File("root/课件/" + n)) == "内容");
  }
  std::string big(kFileChunkBytes + 10, 'z');
  FileMeta meta{"s", 1, "视频/" + name + ".mp4", big.size(), "", "v1"};
  REQUIRE(r.files.Offer(meta).code == StatusCode::kOk);
  r.files.Chunk({"s", meta.path, 0, false, big.substr(0, kFileChunkBytes)});
  r.files.Chunk({"s", meta.path, kFileChunkBytes, false, big.substr(kFileChunkBytes)});
  r.files.Commit({"s", meta.path, Sha256::Hex(big)});
  CHECK(r.One().code == StatusCode::kOk);
  CHECK(Slurp(dir.File("root/" + meta.path)) == big);
}

TEST_CASE("escaping paths, names that are not UTF-8 and symbolic links are refused") {
  TempDir dir;
  std::filesystem::create_directories(dir.File("root/ok"));
  std::filesystem::create_directories(dir.File("outside"));
  std::filesystem::create_directory_symlink(dir.File("outside"), dir.File("root/link"));
  std::filesystem::create_symlink(dir.File("outside/f"), dir.File("root/ok/file-link"));
  Receiver r(dir.File("root"));
  for (const char* path :
       {"../escape", "/abs", "ok/../../escape", "link/x.txt", "ok/file-link", "ok/\xB2\xE2.txt"}) {
    CAPTURE(path);
    FileResult res = r.Put(Put(path, "x"));
    CHECK(res.code != StatusCode::kOk);
    CHECK(res.outcome == "refused");
    CHECK(IsValidUtf8(res.error));
  }
  CHECK(std::filesystem::is_empty(dir.File("outside")));
}

TEST_CASE("a large file resumes at the last whole chunk and is verified at commit") {
  TempDir dir;
  std::filesystem::create_directories(dir.File("root"));
  std::string data(kFileChunkBytes * 2 + 100, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7919) >> 3);
  FileMeta meta{"s", 1, "v/big.bin", data.size(), "", "version-1"};
  {
    Receiver r(dir.File("root"));
    FileResume resume = r.files.Offer(meta);
    REQUIRE(resume.code == StatusCode::kOk);
    CHECK(resume.offset == 0);
    r.files.Chunk({"s", meta.path, 0, false, data.substr(0, kFileChunkBytes)});
    // Half of the second chunk, then the receiver "dies".
    r.files.Chunk({"s", meta.path, kFileChunkBytes, false, data.substr(kFileChunkBytes, 1000)});
  }
  Receiver r(dir.File("root"));
  FileResume resume = r.files.Offer(meta);
  REQUIRE(resume.code == StatusCode::kOk);
  CHECK(resume.offset == kFileChunkBytes);  // the cut chunk is sent again, nothing more
  r.files.Chunk(
      {"s", meta.path, kFileChunkBytes, false, data.substr(kFileChunkBytes, kFileChunkBytes)});
  r.files.Chunk({"s", meta.path, 2 * kFileChunkBytes, false, data.substr(2 * kFileChunkBytes)});
  r.files.Commit({"s", meta.path, Sha256::Hex("not it")});
  CHECK(r.One().code == StatusCode::kDataLoss);
  CHECK_FALSE(std::filesystem::exists(dir.File("root/v/big.bin")));
  // Again from the start, this time with the right hash.
  resume = r.files.Offer(meta);
  CHECK(resume.offset == 0);
  for (size_t off = 0; off < data.size(); off += kFileChunkBytes) {
    r.files.Chunk({"s", meta.path, off, false, data.substr(off, kFileChunkBytes)});
  }
  r.files.Commit({"s", meta.path, Sha256::Hex(data)});
  CHECK(r.One().code == StatusCode::kOk);
  CHECK(Slurp(dir.File("root/v/big.bin")) == data);
  CHECK(PartFiles(dir.File("root")).empty());
}

TEST_CASE("transfers of two subscriptions in progress at once do not disturb each other") {
  TempDir dir;
  std::filesystem::create_directories(dir.File("root"));
  Receiver r(dir.File("root"));
  std::string a(kFileChunkBytes * 3, 'a');
  std::string b(kFileChunkBytes * 2 + 7, 'b');
  FileMeta ma{"sub-a", 1, "甲/视频.mp4", a.size(), "", "va"};
  FileMeta mb{"sub-b", 1, "乙/视频.mp4", b.size(), "", "vb"};
  REQUIRE(r.files.Offer(ma).code == StatusCode::kOk);
  r.files.Chunk({"sub-a", ma.path, 0, false, a.substr(0, kFileChunkBytes)});
  REQUIRE(r.files.Offer(mb).code == StatusCode::kOk);  // a second offer while a is under way
  CHECK(r.files.transfers_in_progress() == 2);
  for (uint64_t off = 0; off < b.size(); off += kFileChunkBytes) {
    r.files.Chunk({"sub-b", mb.path, off, false, b.substr(off, kFileChunkBytes)});
    if (off + kFileChunkBytes < a.size()) {
      r.files.Chunk({"sub-a", ma.path, off + kFileChunkBytes, false,
                     a.substr(off + kFileChunkBytes, kFileChunkBytes)});
    }
  }
  r.files.Commit({"sub-b", mb.path, Sha256::Hex(b)});
  r.files.Commit({"sub-a", ma.path, Sha256::Hex(a)});
  auto results = r.Results();
  REQUIRE(results.size() == 2);
  for (const FileResult& res : results) {
    CAPTURE(res.error);
    CHECK(res.code == StatusCode::kOk);
  }
  CHECK(Slurp(dir.File("root/甲/视频.mp4")) == a);
  CHECK(Slurp(dir.File("root/乙/视频.mp4")) == b);
  CHECK(r.files.transfers_in_progress() == 0);
}

TEST_CASE("a withdrawn transfer leaves nothing; stale parts of other versions are removed") {
  TempDir dir;
  std::filesystem::create_directories(dir.File("root"));
  Receiver r(dir.File("root"));
  std::string data(kFileChunkBytes * 2, 'x');
  FileMeta v1{"s", 1, "a/big.bin", data.size(), "", "v1"};
  REQUIRE(r.files.Offer(v1).code == StatusCode::kOk);
  r.files.Chunk({"s", v1.path, 0, false, data.substr(0, kFileChunkBytes)});
  r.files.AbandonTransfers();  // cut off: the part stays for a resume
  CHECK(PartFiles(dir.File("root")).size() == 1);
  FileMeta v2 = v1;
  v2.version = "v2";  // the file changed at the provider: the old part can never resume
  REQUIRE(r.files.Offer(v2).code == StatusCode::kOk);
  CHECK(PartFiles(dir.File("root")).size() == 1);
  r.files.Chunk({"s", v2.path, 0, false, data.substr(0, kFileChunkBytes)});
  r.files.Abort({"s", v2.path, "changed while it was read"});
  CHECK(r.files.transfers_in_progress() == 0);
  CHECK(PartFiles(dir.File("root")).empty());
  CHECK(r.Results().empty());  // an abort has no answer
  // A part nobody resumes (the agent died; the file was later deleted at the provider) goes
  // with the sweep after a complete run.
  std::filesystem::create_directories(dir.File("root/t/deep"));
  WriteFile(dir.File("root/t/deep/.dx-0123456789abcdef-0123456789abcdef.dxpart"), "stale");
  WriteFile(dir.File("root/t/.old name.0123456789abcdef.dxpart"), "legacy");
  WriteFile(dir.File("root/t/keep.txt"), "consumer's own");
  r.files.Sweep({"s", 2, "t"});
  CHECK(r.One().outcome == "swept");
  CHECK(PartFiles(dir.File("root")).empty());
  CHECK(std::filesystem::exists(dir.File("root/t/keep.txt")));
}

TEST_CASE("folders: empty ones are made, emptied ones removed, the consumer's kept") {
  TempDir dir;
  std::filesystem::create_directories(dir.File("root"));
  Receiver r(dir.File("root"));
  r.files.Folder({"s", 1, "t/空/更深", false});
  CHECK(r.One().outcome == "created");
  CHECK(std::filesystem::is_directory(dir.File("root/t/空/更深")));
  r.files.Folder({"s", 1, "t/空/更深", false});
  CHECK(r.One().outcome == "unchanged");
  r.files.Folder({"s", 1, "t/空/更深", true});
  CHECK(r.One().outcome == "deleted");
  WriteFile(dir.File("root/t/空/consumer.txt"), "mine");
  r.files.Folder({"s", 1, "t/空", true});
  FileResult kept = r.One();
  CHECK(kept.outcome == "kept");
  CHECK(kept.code == StatusCode::kOk);
  CHECK(std::filesystem::exists(dir.File("root/t/空/consumer.txt")));
  // A file where a folder now is (and the reverse) is refused with a reason.
  CHECK(r.Put(Put("t/空", "x")).error.find("is a folder") != std::string::npos);
  CHECK(r.Put(Put("t/空/consumer.txt/x", "x")).error.find("is a file") != std::string::npos);
}

TEST_CASE("a run's begin settles what came before it") {
  TempDir dir;
  std::filesystem::create_directories(dir.File("root"));
  Receiver r(dir.File("root"));
  r.files.Put(Put("a.txt", "1"));
  FileMeta m{"s", 1, "big.bin", kFileChunkBytes * 2, "", "v"};
  REQUIRE(r.files.Offer(m).code == StatusCode::kOk);
  r.files.BeginRun({"s", 2});
  auto results = r.files.TakeResults(true);
  REQUIRE(results.size() == 2);
  CHECK(results[0].path == "a.txt");  // the earlier answer comes first
  CHECK(results[1].outcome == "begun");
  CHECK(r.files.transfers_in_progress() == 0);
}

TEST_CASE("the shared root is checked at start: writable, and keeping modes when asked") {
  TempDir dir;
  CHECK(agent::PrepareSharedRoot(dir.File("new/root"), 0640).ok());
  CHECK(std::filesystem::is_directory(dir.File("new/root")));
  CHECK(std::filesystem::is_empty(dir.File("new/root")));
  WriteFile(dir.File("file"), "x");
  Status st = agent::PrepareSharedRoot(dir.File("file"), std::nullopt);
  CHECK_FALSE(st.ok());
  CHECK(st.message().find(dir.File("file")) != std::string::npos);
}

TEST_CASE("a store of the first version gains the new columns of delivered files") {
  TempDir dir;
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(dir.File("old.db").c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "CREATE TABLE delivered_files (subscription TEXT NOT NULL, path TEXT NOT "
                         "NULL, agent TEXT NOT NULL, agent_path TEXT NOT NULL, size INTEGER NOT "
                         "NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY "
                         "(subscription, path));"
                         "INSERT INTO delivered_files VALUES('s','a.pdf','ag','t/a.pdf',3,7,'x');",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  for (int reopen = 0; reopen < 2; ++reopen) {  // the migration runs again harmlessly
    auto store = scheduler::SqliteStore::Open(dir.File("old.db"));
    REQUIRE(store.ok());
    auto files = (*store)->ListDeliveredFiles("s");
    REQUIRE(files.ok());
    REQUIRE(files->size() == 1);
    if (reopen == 0) CHECK(files->at(0).ctime_ns == 0);  // unknown: re-hashed once
    scheduler::DeliveredFile f = files->at(0);
    f.ctime_ns = 11;
    f.inode = 12;
    REQUIRE((*store)->PutDeliveredFile("ag", f).ok());
    CHECK((*store)->ListDeliveredFiles("s")->at(0).inode == 12);
  }
}

const char* kFileManifest = R"(
kind: FileResource
name: 市教委-教学资源文件
provider: 市教委教研室
summary: 教学课件
share_type: unconditional
topic: institution
directory: /srv/share
---
kind: FileResource
name: 市教委-视频
provider: 市教委教研室
summary: 视频
share_type: unconditional
topic: institution
directory: /srv/video
---
kind: Agent
name: 徐汇区教育局
secret: agent-a-secret-0001
---
kind: Agent
name: 浦东某中学
secret: agent-b-secret-0002
---
kind: Subscription
name: files-a
agent: 徐汇区教育局
entry: 市教委-教学资源文件
target_path: 教学资源
)";

std::string Sub(const std::string& name, const std::string& agent, const std::string& entry,
                const std::string& target) {
  return "---\nkind: Subscription\nname: " + name + "\nagent: " + agent + "\nentry: " + entry +
         "\ntarget_path: " + target + "\n";
}

TEST_CASE("file subscriptions into the same or nested folders of one agent are refused") {
  TempDir dir;
  auto store = scheduler::SqliteStore::Open(dir.File("s.db"));
  REQUIRE(store.ok());
  REQUIRE(scheduler::ApplyManifest(**store, kFileManifest, "m.yaml").ok());
  struct Case {
    std::string agent;
    std::string target;
    bool ok;
  };
  for (const Case& c :
       {Case{"徐汇区教育局", "教学资源", false}, Case{"徐汇区教育局", "教学资源/视频", false},
        Case{"徐汇区教育局", "教学", true}, Case{"徐汇区教育局", "视频", true},
        Case{"浦东某中学", "教学资源", true}}) {
    CAPTURE(c.target);
    auto applied = scheduler::ApplyManifest(
        **store, Sub("files-b", c.agent, "市教委-视频", c.target), "b.yaml");
    CHECK(applied.ok() == c.ok);
    if (!c.ok) {
      CHECK(applied.status().message().find("files-a") != std::string::npos);
      CHECK(applied.status().message().find("b.yaml:") != std::string::npos);
    } else {
      // Undo, so the next case starts from files-a alone.
      REQUIRE(scheduler::ApplyManifest(
                  **store, Sub("files-b", c.agent, "市教委-视频", "zz-" + c.target), "b.yaml")
                  .ok());
    }
  }
  // Within one manifest, too: a folder holding another subscription's folder.
  auto nested =
      scheduler::ApplyManifest(**store,
                               Sub("files-c", "浦东某中学", "市教委-视频", "资源") +
                                   Sub("files-d", "浦东某中学", "市教委-教学资源文件", "资源/课件"),
                               "c.yaml");
  REQUIRE_FALSE(nested.ok());
  CHECK(nested.status().message().find("files-c") != std::string::npos);
  // A subscription may move its own folder.
  CHECK(scheduler::ApplyManifest(
            **store, Sub("files-a", "徐汇区教育局", "市教委-教学资源文件", "教学资源/新"), "a.yaml")
            .ok());
}

TEST_CASE("file resources: bad patterns and unknown name encodings are refused at apply") {
  TempDir dir;
  auto store = scheduler::SqliteStore::Open(dir.File("s.db"));
  REQUIRE(store.ok());
  std::string base = kFileManifest;
  auto with = [&](const std::string& extra) {
    std::string text = base;
    text.insert(text.find("directory: /srv/share") + 21, "\n" + extra);
    return scheduler::ApplyManifest(**store, text, "m.yaml");
  };
  CHECK(with("include: [\"**/*.pdf\", \"课件/**\"]").ok());
  CHECK(with("name_encoding: gb18030").ok());
  auto bad = with("include: [\"/课件/*.pdf\"]");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("include") != std::string::npos);
  CHECK(bad.status().message().find("starts with '/'") != std::string::npos);
  CHECK(with("exclude: [\"**\"]").status().message().find("excludes every file") !=
        std::string::npos);
  CHECK(with("recursive: false\ninclude: [\"课件/*.pdf\"]")
            .status()
            .message()
            .find("not recursive") != std::string::npos);
  CHECK(with("name_encoding: klingon").status().message().find("name_encoding") !=
        std::string::npos);
}

}  // namespace
}  // namespace dx
