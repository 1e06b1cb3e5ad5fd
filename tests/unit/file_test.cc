// File exchange pieces: path safety, resource patterns, and FileReceiver on real directories.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/file_receiver.h"
#include "common/file_path.h"
#include "common/sha256.h"
#include "scheduler/file_run.h"
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
}

TEST_CASE("resource patterns: names anywhere, or paths relative to the directory") {
  scheduler::CatalogEntry e;
  e.include = {"*.pdf", "课件/*.docx"};
  e.exclude = {"草稿*"};
  CHECK(scheduler::MatchesPatterns("a/b/c.pdf", e));
  CHECK(scheduler::MatchesPatterns("课件/教案.docx", e));
  CHECK_FALSE(scheduler::MatchesPatterns("课件/子目录/教案.docx", e));  // '*' stays in one folder
  CHECK_FALSE(scheduler::MatchesPatterns("x/草稿 1.pdf", e));
  CHECK_FALSE(scheduler::MatchesPatterns("notes.txt", e));
  CHECK(scheduler::WorthCompressing("讲义.txt"));
  CHECK_FALSE(scheduler::WorthCompressing("公开课.MP4"));
  CHECK_FALSE(scheduler::WorthCompressing("a.docx"));
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Receiver {
  explicit Receiver(const std::string& root)
      : files(root, 0640, [this](const std::vector<agent::ReceivedFile>& f) {
          records.insert(records.end(), f.begin(), f.end());
          return Status::Ok();
        }) {}
  std::vector<agent::ReceivedFile> records;
  agent::FileReceiver files;
};

FilePut Put(const std::string& path, const std::string& data) {
  FilePut p;
  p.meta = {"s", 1, path, data.size(), Sha256::Hex(data), ""};
  p.data = data;
  return p;
}

TEST_CASE("a small file lands whole with its mode, and a known one is not rewritten") {
  TempDir dir;
  std::filesystem::create_directories(dir.File("root"));
  Receiver r(dir.File("root"));
  FileResult res = r.files.Put(Put("课件/讲义 1.txt", "第一页"));
  CHECK(res.code == StatusCode::kOk);
  CHECK(res.outcome == "written");
  CHECK(Slurp(dir.File("root/课件/讲义 1.txt")) == "第一页");
  struct stat st {};
  REQUIRE(stat(dir.File("root/课件/讲义 1.txt").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  CHECK(r.files.Put(Put("课件/讲义 1.txt", "第一页")).outcome == "unchanged");
  REQUIRE(r.records.size() == 2);
  FilePut corrupt = Put("x.txt", "data");
  corrupt.meta.sha256 = Sha256::Hex("other");
  CHECK(r.files.Put(corrupt).code == StatusCode::kDataLoss);
  CHECK_FALSE(std::filesystem::exists(dir.File("root/x.txt")));
}

TEST_CASE("escaping paths and symbolic links in the tree are refused") {
  TempDir dir;
  std::filesystem::create_directories(dir.File("root/ok"));
  std::filesystem::create_directories(dir.File("outside"));
  std::filesystem::create_directory_symlink(dir.File("outside"), dir.File("root/link"));
  std::filesystem::create_symlink(dir.File("outside/f"), dir.File("root/ok/file-link"));
  Receiver r(dir.File("root"));
  for (const char* path : {"../escape", "/abs", "ok/../../escape", "link/x.txt", "ok/file-link"}) {
    CAPTURE(path);
    FileResult res = r.files.Put(Put(path, "x"));
    CHECK(res.code != StatusCode::kOk);
    CHECK(res.outcome == "refused");
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
  FileResult wrong = r.files.Commit({"s", meta.path, Sha256::Hex("not it")});
  CHECK(wrong.code == StatusCode::kDataLoss);
  CHECK_FALSE(std::filesystem::exists(dir.File("root/v/big.bin")));
  // Again from the start, this time with the right hash.
  resume = r.files.Offer(meta);
  CHECK(resume.offset == 0);
  for (size_t off = 0; off < data.size(); off += kFileChunkBytes) {
    r.files.Chunk({"s", meta.path, off, false, data.substr(off, kFileChunkBytes)});
  }
  FileResult ok = r.files.Commit({"s", meta.path, Sha256::Hex(data)});
  CHECK(ok.code == StatusCode::kOk);
  CHECK(Slurp(dir.File("root/v/big.bin")) == data);
  for (const auto& e : std::filesystem::directory_iterator(dir.File("root/v"))) {
    CHECK(e.path().filename().string().find(".dxpart") == std::string::npos);
  }
}

TEST_CASE("a copy checks the content it copies") {
  TempDir dir;
  std::filesystem::create_directories(dir.File("root"));
  Receiver r(dir.File("root"));
  REQUIRE(r.files.Put(Put("a/原名.txt", "内容")).code == StatusCode::kOk);
  FileCopy copy{{"s", 1, "b/新名.txt", std::string("内容").size(), Sha256::Hex("内容"), ""},
                "a/原名.txt"};
  CHECK(r.files.Copy(copy).outcome == "copied");
  CHECK(Slurp(dir.File("root/b/新名.txt")) == "内容");
  copy.meta.path = "b/另一个.txt";
  copy.meta.sha256 = Sha256::Hex("别的");
  CHECK(r.files.Copy(copy).outcome == "need_data");
  CHECK(r.files.Delete({"s", 1, "b/新名.txt"}).outcome == "deleted");
  CHECK_FALSE(std::filesystem::exists(dir.File("root/b/新名.txt")));
}

}  // namespace
}  // namespace dx
